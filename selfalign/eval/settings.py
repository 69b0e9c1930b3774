"""Settings of an eval run: one dataclass that checks itself.

The engine fields carry the same names as generate's, because `make_engine(settings, model)`
reads them from whichever settings object it is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from selfalign.errors import UserError
from selfalign.eval.refusal import HARMFUL_CATEGORIES

BACKENDS = ("vllm", "transformers", "openai")
ROLES = ("candidate", "baseline", "judge")


def _positive_or_none(value) -> bool:
    return value is None or value >= 1


# field → (does the value fit, what it must be)
_RULES = {
    **{name: (lambda v: v >= 1, "at least 1")
       for name in ("max_tokens", "judge_principles", "tensor_parallel_size",
                    "data_parallel_size", "max_concurrency")},
    "limit": (_positive_or_none, "at least 1"),
    "max_model_len": (_positive_or_none, "at least 1"),
    "tie_band": (lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    "temperature": (lambda v: v >= 0, ">= 0"),
    "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "gpu_memory_utilization": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "request_timeout": (lambda v: v > 0, "> 0"),
}


@dataclass(frozen=True)
class EngineFields:
    """How a model's engine runs, under the names generate uses (`make_engine` reads them)."""

    dtype: str = "auto"
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    cpu_kv_cache_gib: float = 2.0
    enforce_eager: bool | None = None
    api_key_env: str | None = None  # None: $OPENAI_API_KEY if set, else no key (local servers)
    max_concurrency: int = 64
    request_timeout: float = 600.0


@dataclass(frozen=True)
class EvalSettings(EngineFields):
    """What an eval compares, on which prompts, and how the models run."""

    model: str = ""  # the candidate
    baseline: str | None = None  # None: the embedded SmolLM2-135M-Instruct
    judge_model: str | None = None  # None: the baseline judges
    prompts: tuple[str, ...] = ()
    principles: tuple[str, ...] = ()
    out: str = ""
    split: str | None = None  # None: `test` for prepared folders, every row elsewhere
    limit: int | None = None
    text_field: str = "prompt"
    id_field: str = "id"
    user_field: str = "user_id"
    tie_band: float = 0.05
    judge_principles: int = 1  # principles drawn per comparison
    judge_cot: bool = False
    reward_model: str | None = None
    checks_only: bool = False  # score the principles' checks only: build no judge
    ifeval: str | None = None  # a prompt file in IFEval's format, answered and checked as well
    xstest: bool = False  # XSTest's bundled prompts, answered as well; safety figures by type
    harmful_categories: tuple[str, ...] = HARMFUL_CATEGORIES
    # sampling of the answers
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    # engine, as in generate
    backend: str = "vllm"
    base_url: tuple[str, ...] = ()
    candidate_base_url: tuple[str, ...] = ()  # openai: overrides base_url for one model
    baseline_base_url: tuple[str, ...] = ()
    judge_base_url: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("prompts", "principles", "base_url", "candidate_base_url",
                     "baseline_base_url", "judge_base_url", "harmful_categories"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = self._problems()
        if problems:
            raise UserError("invalid eval settings:\n  " + "\n  ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        for name, flag in (("model", "--model"), ("out", "--out")):
            if not getattr(self, name):
                problems.append(f"{name}: required; pass {flag}")
        problems += self._prompt_problems()
        if self.backend not in BACKENDS:
            problems.append(f"backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name, (fits, expected) in _RULES.items():
            if not fits(getattr(self, name)):
                problems.append(f"{name}: must be {expected}, got {getattr(self, name)!r}")
        if self.backend == "openai":
            roles = ROLES if self.needs_judge else ROLES[:2]
            missing = [role for role in roles if not self.urls_of(role)]
            if missing:
                problems.append(f"base_url: --backend openai needs a server for the "
                                f"{', '.join(missing)} model; pass --base-url (for all) or "
                                f"--{missing[0]}-base-url")
        return problems

    def _prompt_problems(self) -> list[str]:
        """--prompts and --principles go together; --xstest or --ifeval alone need neither."""
        if not self.prompts:
            if not (self.xstest or self.ifeval):
                return ["prompts: required; pass --prompts with a file or folder, or --xstest or "
                        "--ifeval FILE for those prompt sets alone"]
            given = [f"--{name}" for name in ("principles", "split", "limit")
                     if getattr(self, name)]
            if given:
                return [f"{', '.join(given)}: without --prompts there is nothing to apply "
                        f"{'it' if len(given) == 1 else 'them'} to (--xstest and --ifeval bring "
                        f"their own prompts); add --prompts or leave {given[0]} out"]
            return []
        if not self.principles:
            return ["principles: required with --prompts; pass --principles with a file, folder "
                    "or manifest whose principles have a `comparison` question"]
        return []

    @property
    def needs_judge(self) -> bool:
        """A judge compares the --prompts answers unless --checks-only; --xstest and --ifeval
        alone have nothing for it to compare."""
        return bool(self.prompts) and not self.checks_only

    def urls_of(self, role: str) -> tuple[str, ...]:
        """The servers of one model: its own --ROLE-base-url, else (for a judge that is the
        baseline or the candidate) that model's, else --base-url."""
        own = getattr(self, f"{role}_base_url")
        if own or role != "judge":
            return own or self.base_url
        if self.judge_model in (None, self.baseline):
            return self.baseline_base_url or self.base_url
        if self.judge_model == self.model:
            return self.candidate_base_url or self.base_url
        return self.base_url

    def for_role(self, role: str) -> "EvalSettings":
        """Settings to build the engine of one model with (its servers as `base_url`)."""
        return replace(self, base_url=self.urls_of(role))

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
