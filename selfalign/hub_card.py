"""The YAML head of every folder's README.md, in the form the Hub and `datasets` read.

`datasets.load_dataset(folder, config)` reads the card's `configs`: a config whose `data_files`
is one glob is loaded as a single `train` split whatever the file names say, so a run's test
prompts would end up in train. Each config here lists one entry per split written instead.
Run folders, label exports and eval folders all build their cards through this module.
"""

from __future__ import annotations

import re
from typing import Mapping

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


def card_data(configs: Configs, rows: int, license: str = DEFAULT_LICENSE,
              tags: tuple[str, ...] = (), sources: list[str] | None = None,
              task_categories: tuple[str, ...] = ("text-generation",)) -> DatasetCardData:
    """The card's metadata; the first config is the one `load_dataset(folder)` picks."""
    data = DatasetCardData(
        license=license, size_categories=[size_category(rows)],
        task_categories=list(task_categories), tags=[*BASE_TAGS, *tags],
        source_datasets=sources or None,
        configs=[{"config_name": name, "data_files": [{"split": split, "path": path}
                                                      for split, path in splits.items()],
                  **({"default": True} if index == 0 else {})}
                 for index, (name, splits) in enumerate(configs.items())])
    if license == DEFAULT_LICENSE:
        data.license_name = UNCHOSEN_LICENSE_NAME
    return data


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
