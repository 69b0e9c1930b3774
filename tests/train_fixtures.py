"""Writes folders in the layout of `selfalign generate` output, for training tests and benchmarks.

A stand-in for the real generator: short literal texts where the chosen answer is polite and
helpful and the rejected one rude, so a preference is there to learn.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TOPICS = [
    "bake bread", "learn Python", "fix a flat tyre", "write a cover letter", "plant tomatoes",
    "save money", "sleep better", "start running", "clean a laptop screen", "cook rice",
    "learn to swim", "tie a tie", "paint a wall", "study for an exam", "make coffee",
    "reduce stress", "train a puppy", "write a poem", "set up a budget", "learn chess",
]
HELD_OUT_TOPICS = [
    "brew tea", "fold a shirt", "learn guitar", "grow basil", "read faster", "sharpen a knife",
    "iron a shirt", "plan a trip", "stretch after work", "water houseplants",
]
QUESTIONS = [
    "How do I {t}?",
    "Can you help me {t}?",
    "What is a good way to {t}?",
    "Any tips to {t}?",
]
CHOSEN = "Happy to help! To {t}, start with small steps, be patient, and ask me if you get stuck."
REJECTED = "Figure it out yourself. Wanting to {t} is a stupid idea and you will fail anyway."


def pair_rows(n: int, split: str, topics: list[str] | None = None) -> list[dict]:
    """n preference rows in the `prefs/` format, with provenance columns."""
    topics = topics or (HELD_OUT_TOPICS if split != "train" else TOPICS)
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        prompt = QUESTIONS[(i // len(topics)) % len(QUESTIONS)].format(t=topic)
        rows.append({
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": CHOSEN.format(t=topic)}],
            "rejected": [{"role": "assistant", "content": REJECTED.format(t=topic)}],
            "prompt_id": f"{split}-{i}",
            "principle_ids": ["harmless/be-kind"],
            "critique": "The answer is rude.",
            "rounds": 1,
            "model": "fixture",
            "split": split,
        })
    return rows


def sft_rows(pairs: list[dict]) -> list[dict]:
    """The `sft/` rows made from preference rows: [user prompt, assistant chosen]."""
    return [{
        "messages": p["prompt"] + p["chosen"],
        "prompt_id": p["prompt_id"],
        "principle_ids": p["principle_ids"],
        "split": p["split"],
    } for p in pairs]


def write_shards(folder: Path, split: str, rows: list[dict], schema: pa.Schema, shards: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        table = pa.Table.from_pylist(rows[k::shards], schema=schema)
        pq.write_table(table, folder / f"{split}-{k:05d}-of-{shards:05d}.parquet")


def write_run_dir(path: Path, splits: dict[str, int] | None = None, shards: int = 1) -> Path:
    """A run folder with sft/, prefs/ and manifest.json; `splits` maps split name to row count."""
    path = Path(path)
    splits = splits or {"train": 24, "validation": 8}
    counts = {}
    example = pair_rows(1, "train")
    prefs_schema = pa.Table.from_pylist(example).schema
    sft_schema = pa.Table.from_pylist(sft_rows(example)).schema
    for split, n in splits.items():
        pairs = pair_rows(n, split)
        write_shards(path / "prefs", split, pairs, prefs_schema, shards)
        write_shards(path / "sft", split, sft_rows(pairs), sft_schema, shards)
        counts[split] = n
    manifest = {
        "model": "fixture",
        "rows": {"prefs": counts, "sft": counts},
        "principle_hashes": {"harmless/be-kind": hashlib.sha256(b"be kind").hexdigest()},
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return path

