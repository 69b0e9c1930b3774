"""Engines behind one interface: `vllm` (default) and `transformers`.

Tests use a scripted stand-in that lives in tests/ and cannot be chosen from the CLI.
"""

from __future__ import annotations

from pathlib import Path

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


def make_engine(settings, model: str):
    """Build the engine a run asked for. Imports the heavy backend only now."""
    if settings.backend == "vllm":
        from selfalign.engine.vllm_engine import VLLMEngine

        return VLLMEngine(model, seed=settings.seed, max_model_len=settings.max_model_len,
                          dtype=settings.dtype, tensor_parallel_size=settings.tensor_parallel_size,
                          gpu_memory_utilization=settings.gpu_memory_utilization,
                          cpu_kv_cache_gib=settings.cpu_kv_cache_gib,
                          enforce_eager=settings.enforce_eager)
    from selfalign.engine.transformers_engine import TransformersEngine

    return TransformersEngine(model, seed=settings.seed, dtype=settings.dtype,
                              max_model_len=settings.max_model_len)
