"""Settings of a generate run: one dataclass that checks itself, fed by flags and run.yaml."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from selfalign.errors import UserError
from selfalign.hub_card import DEFAULT_LICENSE, license_problem
from selfalign.settings_schema import read_settings_file

BACKENDS = ("vllm", "openai", "transformers")
# Where the run's engines live (generate/ray/cluster.py). A resumed run may change them, and
# does not take them from the manifest: it runs wherever it is started.
RAY_FIELDS = ("ray", "ray_workers", "ray_cpus_per_worker", "ray_gpus_per_worker", "shard_timeout",
              "shard_attempts", "ray_start_timeout")
LOCAL_RAY = "local"  # `--ray` without an address: a cluster on this machine for the run
# How the work is spread, not what it makes: a resumed run may change these.
OPERATIONAL = ("data_parallel_size", "max_num_seqs", "base_url", "api_key_env",
               "max_concurrency", "request_timeout", "max_retries", "judge_base_url", *RAY_FIELDS)
FEEDBACK_MODES = ("verify", "rank")


@dataclass
class GenerateSettings:
    """Everything that decides what a run writes (`out` and `resume` decide only where/how)."""

    principles: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    out: str = ""
    model: str | None = None  # None: the embedded SmolLM2-135M-Instruct
    backend: str = "vllm"
    rounds: int | None = None  # None: the constitution's `rounds`, else 1; 0 only with rank
    samples: int = 1
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    limit: int | None = None
    shard_size: int = 512
    resume: bool = False
    text_field: str = "prompt"
    id_field: str = "id"
    user_field: str = "user_id"
    dtype: str = "auto"
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1  # vLLM engine replicas, each of tensor_parallel_size GPUs
    max_num_seqs: int | None = None  # vLLM's batch limit; None: vLLM's offline default
    gpu_memory_utilization: float = 0.9
    cpu_kv_cache_gib: float = 2.0
    enforce_eager: bool | None = None  # None: eager on CPU (no gain from compiling), graphs on GPU
    # The openai backend: OpenAI-compatible servers, requests spread over all of them.
    base_url: list[str] = field(default_factory=list)
    api_key_env: str | None = None  # name of the variable holding the key; the key is never stored
    max_concurrency: int = 64  # requests in flight over all servers
    request_timeout: float = 600.0  # seconds for one request before it is retried
    max_retries: int = 6  # per request, on connection errors, 429 and 5xx
    # AI feedback: a judge compares answers under drawn principles, in both orders.
    feedback: str | None = None  # None (off), "verify" or "rank"
    judge_principles: int = 1  # comparison principles drawn per pair, labels averaged
    judge_cot: bool = False  # the judge reasons first; labels clamped to [0.4, 0.6]
    min_preference: float = 0.5  # verify: pairs the judge prefers less go to rejects
    check_retries: int = 1  # a revision failing a check is asked again, at most this many times
    judge_model: str | None = None  # None: the run's own model and engine
    judge_base_url: list[str] = field(default_factory=list)  # openai: the judge's servers
    prompt_format: str = "auto"  # how a row holds its prompt; see selfalign.prompts.sources.FieldMap
    prompt_template: str | None = None  # several columns into one prompt: "{Context}\n\n{Behavior}"
    conversation: str = "last-user"  # multi-turn prompts: the whole context, or first-user only
    # A prompt's expected behaviour where its row does not say (selfalign.prompts.behavior).
    behavior: str | None = None  # comply | refuse, for every unmarked prompt
    harmful_categories: str | list[str] | None = None  # `category` values that mean refuse
    # Ray: None runs here; "local" starts a cluster for the run; else an address for ray.init.
    ray: str | None = None
    ray_workers: int | None = None  # None: as many as the cluster holds
    # None: without GPUs one worker per node with that node's free CPUs; with GPUs 1 per worker.
    ray_cpus_per_worker: float | None = None
    ray_gpus_per_worker: float | None = None  # None: tensor × data parallel size on GPU clusters
    shard_timeout: float | None = None  # None: from the shard times seen so far, with a floor
    shard_attempts: int = 3  # then the shard's prompts go to rejects as shard_failed
    ray_start_timeout: float = 120.0  # workers not placed on a node by then: an error
    license: str = DEFAULT_LICENSE  # the dataset card's; `other` asks the publisher to choose

    def __post_init__(self) -> None:
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("samples", "max_tokens", "shard_size", "tensor_parallel_size",
                     "data_parallel_size", "max_concurrency"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("limit", "max_model_len", "max_num_seqs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name}: must be at least 1, got {value}")
        if self.temperature < 0:
            problems.append(f"temperature: must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p: must be in (0, 1], got {self.top_p}")
        if not 0 < self.gpu_memory_utilization <= 1:
            problems.append(f"gpu_memory_utilization: must be in (0, 1], got "
                            f"{self.gpu_memory_utilization}")
        problems += self._feedback_problems()
        problems += self._ray_problems()
        if why := license_problem(self.license):
            problems.append(why)
        if self.request_timeout <= 0:
            problems.append(f"request_timeout: must be > 0 seconds, got {self.request_timeout}")
        if self.max_retries < 0:
            problems.append(f"max_retries: must be >= 0, got {self.max_retries}")
        if self.check_retries < 0:
            problems.append(f"check_retries: must be >= 0, got {self.check_retries}")
        if self.backend == "openai" and not self.base_url:
            problems.append("base_url: the openai backend needs at least one --base-url")
        if self.backend != "openai" and self.base_url:
            problems.append(f"base_url: only the openai backend uses it (backend is "
                            f"{self.backend!r}); add --backend openai")
        try:  # the prompt reader's own checks: field names, format, template syntax, behaviour
            from selfalign.prompts.sources import FieldMap

            FieldMap.from_settings(self)
        except (UserError, ValueError) as err:
            problems.append(str(err))
        if problems:
            raise UserError("invalid settings:\n  " + "\n  ".join(problems))

    def _feedback_problems(self) -> list[str]:
        problems = []
        if self.rounds is not None and self.rounds < 0:
            problems.append(f"rounds: must be at least 0, got {self.rounds}")
        if self.feedback is not None and self.feedback not in FEEDBACK_MODES:
            problems.append(f"feedback: expected one of {', '.join(FEEDBACK_MODES)}, got "
                            f"{self.feedback!r}")
        if self.rounds == 0 and self.feedback != "rank":
            problems.append("rounds: 0 (no critique or revision) makes no pairs by itself; use "
                            "it with --feedback rank and --samples K")
        if self.feedback == "rank" and self.samples < 2:
            problems.append(f"feedback: rank compares a prompt's samples, so it needs "
                            f"--samples 2 or more (got {self.samples})")
        if self.judge_principles < 1:
            problems.append(f"judge_principles: must be at least 1, got {self.judge_principles}")
        if not 0 <= self.min_preference <= 1:
            problems.append(f"min_preference: must be in [0, 1], got {self.min_preference}")
        if self.judge_base_url and self.backend != "openai":
            problems.append("judge_base_url: only the openai backend uses it; add --backend "
                            "openai")
        if (self.judge_model or self.judge_base_url) and self.feedback is None:
            problems.append("judge_model/judge_base_url: no judge runs without --feedback "
                            "verify|rank")
        return problems

    def _ray_problems(self) -> list[str]:
        problems = []
        if isinstance(self.ray, bool):  # `ray: true` in run.yaml: a cluster on this machine
            self.ray = LOCAL_RAY if self.ray else None
        if self.ray is not None and not isinstance(self.ray, str):
            problems.append(f"ray: expected an address (auto, HOST:PORT, ray://HOST:10001) or "
                            f"true, got {self.ray!r}")
        if self.ray is None and (self.ray_workers is not None
                                 or self.ray_gpus_per_worker is not None):
            problems.append("ray_workers/ray_gpus_per_worker: these place workers on a Ray "
                            "cluster; add --ray (or --ray ADDRESS)")
        if self.ray_workers is not None and self.ray_workers < 1:
            problems.append(f"ray_workers: must be at least 1, got {self.ray_workers}")
        if self.ray_cpus_per_worker is not None and self.ray_cpus_per_worker <= 0:
            problems.append(f"ray_cpus_per_worker: must be > 0, got {self.ray_cpus_per_worker}")
        for name in ("shard_timeout", "ray_start_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                problems.append(f"{name}: must be > 0 seconds, got {value}")
        if self.shard_attempts < 1:
            problems.append(f"shard_attempts: must be at least 1, got {self.shard_attempts}")
        if self.ray_gpus_per_worker is not None and self.ray_gpus_per_worker < 0:
            problems.append(f"ray_gpus_per_worker: must be >= 0, got {self.ray_gpus_per_worker}")
        return problems

    @property
    def behavior_rule(self):
        """How prompts without their own mark get one (FieldMap.from_settings reads it)."""
        from selfalign.prompts.behavior import behavior_rule

        return behavior_rule(self.behavior, self.harmful_categories)

    def fingerprint_config(self) -> dict[str, Any]:
        """The settings a resumed run must share with the original one."""
        data = asdict(self)
        # The license is the card's only, and runs from before it was a setting have none.
        for where_not_what in ("out", "resume", "principles", "prompts", "license", *OPERATIONAL):
            data.pop(where_not_what)
        return data


FIELD_NAMES = [f.name for f in fields(GenerateSettings)]


def load_run_config(path: str) -> dict[str, Any]:
    """Read run.yaml, checked against selfalign/schemas/run.schema.json (made from the fields
    above and the flags' help by scripts/build_schemas.py): keys are GenerateSettings fields,
    with dashes or underscores."""
    config = read_settings_file(Path(path), "run", key_names=lambda key: key.replace("-", "_"))
    for name in ("principles", "prompts", "base_url", "judge_base_url"):
        if isinstance(config.get(name), str):
            config[name] = [config[name]]
    return config


def merge_settings(*layers: dict[str, Any]) -> GenerateSettings:
    """Later layers win: defaults < run.yaml < manifest (on resume) < explicit flags."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if k in FIELD_NAMES})
    try:
        return GenerateSettings(**merged)
    except TypeError as err:
        raise UserError(f"invalid settings: {err}") from None
