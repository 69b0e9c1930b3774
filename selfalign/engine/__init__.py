"""Engines behind one interface: `vllm` (default), `openai` (servers) and `transformers`.

Tests use a scripted stand-in that lives in tests/ and cannot be chosen from the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from selfalign.errors import UserError


def resolve_model(model: str | None) -> str:
    """A model reference checked before anything loads: the embedded default, a folder, an id."""
    if model is None:
        from selfalign.engine.default_model import default_model_path

        return str(default_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"--model {model}: the folder has no config.json, so it is not a "
                            f"Hugging Face checkpoint")
        return str(path.resolve())
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1 or path.exists()
    if looks_local:
        raise UserError(f"--model {model}: no such folder. Give a local checkpoint folder, a "
                        f"model id such as HuggingFaceTB/SmolLM2-135M-Instruct, or leave "
                        f"--model out to use the embedded default")
    return model  # a hub id; vLLM/transformers resolve it (from the local cache when offline)


def model_resolver(settings) -> Callable[[str | None], str]:
    """How a run's `--model` is checked before anything loads: a local checkpoint or hub id for
    in-process backends; for servers, that every `--base-url` answers and serves it."""
    if settings.backend == "openai":
        from selfalign.engine.openai_engine import check_servers

        return lambda model: check_servers(settings.base_url, model, settings.api_key_env,
                                           timeout=min(settings.request_timeout, 30.0))
    return resolve_model


def judge_checker(settings, options: tuple[str, ...]) -> Callable[[str], None]:
    """How a judge model is checked before anything loads: it must give the log-probability of
    each of `options` (the letters the judge's requests carry; the engine knows no stage), so
    its tokenizer must keep each one token (local models), or its servers must return
    `top_logprobs` (the openai backend)."""
    if settings.backend == "openai":
        from selfalign.engine.openai_engine import check_logprobs

        urls = settings.judge_base_url or settings.base_url
        return lambda model: check_logprobs(urls, model, settings.api_key_env, options)

    def check_tokenizer(model: str) -> None:
        from transformers import AutoTokenizer

        from selfalign.engine.base import option_token_ids

        option_token_ids(AutoTokenizer.from_pretrained(model), options, model)

    return check_tokenizer


def make_engine(settings, model: str):
    """Build the engine a run asked for. Imports the heavy backend only now.

    `settings` is any object with the engine fields of GenerateSettings (eval uses it too);
    fields it lacks take their defaults.
    """
    option = lambda name, default=None: getattr(settings, name, default)  # noqa: E731
    if settings.backend == "vllm":
        from selfalign.engine.vllm_engine import VLLMEngine

        return VLLMEngine(model, seed=option("seed", 0), max_model_len=option("max_model_len"),
                          dtype=option("dtype", "auto"),
                          tensor_parallel_size=option("tensor_parallel_size", 1),
                          data_parallel_size=option("data_parallel_size", 1),
                          gpu_memory_utilization=option("gpu_memory_utilization", 0.9),
                          cpu_kv_cache_gib=option("cpu_kv_cache_gib", 2.0),
                          enforce_eager=option("enforce_eager"),
                          max_num_seqs=option("max_num_seqs"))
    if settings.backend == "openai":
        from selfalign.engine.openai_engine import OpenAIEngine

        return OpenAIEngine(option("base_url"), model, api_key_env=option("api_key_env"),
                            max_concurrency=option("max_concurrency", 64),
                            timeout=option("request_timeout", 600.0),
                            max_retries=option("max_retries", 6))
    from selfalign.engine.transformers_engine import TransformersEngine

    return TransformersEngine(model, seed=option("seed", 0), dtype=option("dtype", "auto"),
                              max_model_len=option("max_model_len"))
