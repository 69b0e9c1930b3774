"""How outputs name a model so that the name means the same on every machine.

A run loads a model from a path only this machine has (the embedded model's cache folder, a
local checkpoint), so data, dataset card and manifest name it portably instead:
- the embedded default: its model name, the package that ships it and that package's version;
- a local checkpoint folder: the folder's name and the sha256 of its config and weights index;
- a hub id or a served model name: as given.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from selfalign.engine import default_model
from selfalign.errors import UserError

# Where a checkpoint lists its weight files; the first one present is hashed.
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


@functools.lru_cache(maxsize=64)
def model_name(model: str) -> str:
    """The short portable name of a resolved model reference (path or id), for data rows."""
    return model_provenance(model, hashes=False)["name"]


def model_provenance(model: str, hashes: bool = True) -> dict:
    """What identifies a resolved model reference (a folder path or an id) on any machine."""
    folder = Path(model)
    if not folder.is_dir():
        return {"name": model, "source": "id"}
    if _is_embedded(folder):
        return {"name": default_model.MODEL_NAME, "source": "embedded",
                "package": default_model.DISTRIBUTION,
                "package_version": _installed_version(default_model.DISTRIBUTION),
                "dtype": default_model.CHECKPOINT_DTYPE}
    found = {"name": folder.name, "source": "local folder"}
    if hashes:
        found["config_sha256"] = _sha256(folder / "config.json")
        found["weights_index_sha256"] = weights_index_sha256(folder)
    return found


def weights_index_sha256(folder: Path) -> str | None:
    """sha256 of the checkpoint's weights index file; a checkpoint in one file has none, so its
    stand-in is a listing of the weight files with their sizes (hashing gigabytes of weights on
    every start would cost minutes)."""
    for name in WEIGHT_INDEXES:
        if (folder / name).is_file():
            return _sha256(folder / name)
    listing = "".join(f"{f.name}\t{f.stat().st_size}\n" for f in sorted(folder.iterdir())
                      if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest() if listing else None


def _is_embedded(folder: Path) -> bool:
    try:
        return folder.resolve() == default_model.default_model_folder().resolve()
    except UserError:  # the package that ships it is not installed
        return False


def _installed_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
