"""The YAML head of every folder's README.md, in the form the Hub and `datasets` read.

`datasets.load_dataset(folder, config)` reads the card's `configs`: a config whose `data_files`
is one glob is loaded as a single `train` split whatever the file names say, so a run's test
prompts would end up in train. Each config here lists one entry per split written instead.
Run folders, label exports and eval folders all build their cards through this module.

The card also carries `dataset_info`: each config's splits with their rows and bytes, and a
sha256 over its files. `datasets` 5.2 caches a local folder under `<folder name>/<config>/
0.0.0/<hash>`, and that hash is taken from the card's `configs` and `dataset_info` only, never
from the files (docs/reference/outputs.md, "Loading through the card"). With the files' sha256
in the YAML, a folder written again, or another folder of the same name, gets its own cache
entry instead of the rows cached for other files.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Mapping

import pyarrow.parquet as pq
from huggingface_hub import DatasetCard, DatasetCardData

DEFAULT_LICENSE = "other"
# `license: other` needs a `license_name` on the Hub; this one says that nobody chose yet.
UNCHOSEN_LICENSE_NAME = "to-be-chosen-by-the-publisher"
LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
# The Hub's size buckets (the same list as `datasets`' size_categories.json), by upper bound.
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"),
                (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
BASE_TAGS = ("selfalign", "synthetic")
# Where a prompt file lies when it came from the Hub's cache (`hf download --repo-type dataset`).
HUB_CACHE_DATASET = re.compile(r"datasets--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\]")

Configs = Mapping[str, Mapping[str, str]]  # config name → split → path (a glob) in the folder


def license_problem(license: str) -> str | None:
    """Why `license` cannot go in a card (None when it can): a Hub license id, lower case."""
    if LICENSE_ID.match(license):
        return None
    return (f"license: {license!r} is not a license id; use the Hub's lower-case ids "
            f"(apache-2.0, mit, cc-by-4.0, ...) or {DEFAULT_LICENSE}")


def size_category(rows: int) -> str:
    for bound, name in SIZE_BUCKETS:
        if rows < bound:
            return name
    return "n>1B"


def source_datasets(inputs: list[str]) -> list[str]:
    """The Hub datasets the prompts were read from, when their paths name one."""
    found = []
    for path in inputs:
        match = HUB_CACHE_DATASET.search(str(path))
        if match:
            name = f"extended|{match['org']}/{match['name']}"
            if name not in found:
                found.append(name)
    return found


def card_data(folder: Path, configs: Configs, rows: int, license: str = DEFAULT_LICENSE,
              tags: tuple[str, ...] = (), sources: list[str] | None = None,
              task_categories: tuple[str, ...] = ("text-generation",)) -> DatasetCardData:
    """The card's metadata for the files now in `folder`; the first config is the one
    `load_dataset(folder)` picks."""
    data = DatasetCardData(
        license=license, size_categories=[size_category(rows)],
        task_categories=list(task_categories), tags=[*BASE_TAGS, *tags],
        source_datasets=sources or None,
        dataset_info=[files_info(Path(folder), name, splits) for name, splits in configs.items()],
        configs=[{"config_name": name, "data_files": [{"split": split, "path": path}
                                                      for split, path in splits.items()],
                  **({"default": True} if index == 0 else {})}
                 for index, (name, splits) in enumerate(configs.items())])
    if license == DEFAULT_LICENSE:
        data.license_name = UNCHOSEN_LICENSE_NAME
    return data


def files_info(folder: Path, config: str, splits: Mapping[str, str]) -> dict:
    """One config's `dataset_info`: rows and bytes per split as `datasets` counts them
    (`num_bytes` uncompressed, from the parquet footers), the files' bytes, and a sha256 that
    changes whenever any file's content or name does."""
    digest = hashlib.sha256()
    split_rows, files_bytes = [], 0
    for split, pattern in splits.items():
        examples = uncompressed = 0
        for path in sorted(folder.glob(pattern)):
            footer = pq.read_metadata(path)
            examples += footer.num_rows
            uncompressed += sum(footer.row_group(i).total_byte_size
                                for i in range(footer.num_row_groups))
            files_bytes += path.stat().st_size
            with open(path, "rb") as handle:
                file_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
            digest.update(f"{path.relative_to(folder).as_posix()} {file_sha256}\n".encode())
        split_rows.append({"name": split, "num_bytes": uncompressed, "num_examples": examples})
    return {"config_name": config,
            "description": f"files sha256 {digest.hexdigest()} (over each file's path and sha256)",
            "splits": split_rows, "download_size": files_bytes,
            "dataset_size": sum(s["num_bytes"] for s in split_rows)}


def license_note(license: str) -> str:
    """A line for the card's text: who must choose the license when none was given."""
    if license != DEFAULT_LICENSE:
        return f"License: `{license}`."
    return ("**License not chosen.** Whoever publishes this folder must replace `license: other` "
            f"and `license_name: {UNCHOSEN_LICENSE_NAME}` in the YAML above with the license "
            "that the inputs and the model's terms allow (`license_link` too, for `other`).")


def card_text(data: DatasetCardData, body: str) -> str:
    """README.md: the metadata as YAML between `---` lines, then the text."""
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n{body.lstrip()}"))


def split_paths(folder: str, splits) -> dict[str, str]:
    """`{split: "folder/<split>-*.parquet"}` for files named like `train-00000-of-00001.parquet`."""
    return {split: f"{folder}/{split}-*.parquet" for split in splits}
