"""`label export`: people's labels as a folder that `train rm --data` and `eval judge --pairs`
read as they are: manifest.json and prefs/<split>-00000-of-00001.parquet in TRL's
conversational form, plus sft/ with the demonstrations labellers wrote.

One row per comparison: for a `compare` item its two replies, for a `rank` item each of its
C(K,2) pairs. `preference` is the share of labellers (skips left out) who preferred `chosen`,
a tie counting half for each side, or, with `drop_ties`, not at all.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

from selfalign import __version__
from selfalign.atomic import write_json, write_parquet, write_text
from selfalign.hub_card import card_data, card_text, license_note, split_paths
from selfalign.errors import UserError
from selfalign.label.project import Project
from selfalign.label.report import TIE, comparisons
from selfalign.store.assemble import describe_final_files
from selfalign.store.layout import (CARD, LABEL_EXPORT_FORMAT, MANIFEST, split_file_name,
                                    written_splits)

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
PREFS_SCHEMA = pa.schema([
    ("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES), ("id", pa.string()),
    ("prompt_id", pa.string()), ("split", pa.string()), ("task", pa.string()),
    ("preference", pa.float64()), ("labellers", pa.int32()),
    ("labeller_ids", pa.list_(pa.string())), ("instructions_sha256", pa.list_(pa.string())),
])
SFT_SCHEMA = pa.schema([("messages", MESSAGES), ("prompt_id", pa.string()), ("split", pa.string()),
                        ("labeller_id", pa.string()), ("score", pa.int32())])


def export_labels(project: Project, out: Path, drop_ties: bool = False) -> dict:
    """Write the export folder; returns its manifest."""
    out = Path(out)
    if (out / MANIFEST).exists() or (out.exists() and any(out.iterdir())):
        raise UserError(f"--out {out}: the folder exists and is not empty; pick a new one")
    labels = project.db.all_labels()
    prefs = pair_rows(labels, drop_ties)
    sft = demonstration_rows(labels)
    if not prefs and not sft:
        raise UserError(f"{project.labels_dir}: no labels to export yet")
    counts = {"prefs": _write_splits(out / "prefs", prefs, PREFS_SCHEMA),
              "sft": _write_splits(out / "sft", sft, SFT_SCHEMA)}
    manifest = {"status": "complete", "format": LABEL_EXPORT_FORMAT,
                "selfalign_version": __version__, "created": time.time(),
                "source_run": str(project.run.out.resolve()),
                "source_manifest_sha256": project.run.manifest_sha256,
                "ties": "dropped" if drop_ties else "half", "counts": counts,
                "labels": len(labels),
                "labellers": sorted({l["pseudonym"] for l in labels})}
    write_text(out / CARD, export_card(out, manifest))
    # What `selfalign verify` checks before the folder is trained on or uploaded.
    manifest["files"] = describe_final_files(out)
    write_json(out / MANIFEST, manifest)
    return manifest


def export_card(out: Path, manifest: dict) -> str:
    """README.md: `prefs` and `sft` as configs with the splits written (a folder with no rows of
    a kind has no files, and no config)."""
    configs = {folder: split_paths(folder, splits) for folder in ("prefs", "sft")
               if (splits := written_splits(out / folder))}
    counts = manifest["counts"]
    data = card_data(out, configs, sum(counts["prefs"].values()),
                     tags=("human-feedback", "preference", "dpo", "reward-modeling"))
    rows = "\n".join(f"| {kind} | {split} | {n} |" for kind in ("prefs", "sft")
                     for split, n in counts[kind].items())
    return card_text(data, f"""# People's labels (selfalign {manifest['selfalign_version']})

Made by `selfalign label export` from {manifest['labels']} labels by {len(manifest['labellers'])}
labeller(s) on the run recorded in `manifest.json`. `prefs/` holds one preference pair per
comparison in TRL's conversational format (`preference`: the share of labellers who preferred
`chosen`, ties {manifest['ties']}); `sft/` holds the answers labellers wrote themselves.
`datasets.load_dataset(FOLDER, "prefs")` gives the splits as written.

| config | split | rows |
|---|---|---|
{rows}

## License and use

{license_note("other")}
""")


def pair_rows(labels: list[dict], drop_ties: bool = False) -> list[dict]:
    votes: dict[tuple, list[tuple[dict, object]]] = defaultdict(list)
    for label in labels:
        for comparison, outcome in comparisons(label).items():
            if outcome == TIE and drop_ties:
                continue
            votes[(label["item"], comparison)].append((label, outcome))
    rows = []
    for (item, comparison), cast in votes.items():
        first, second = map(int, comparison.split("-"))
        payload = cast[0][0]["payload"]
        for_first = sum(1.0 if o == first else 0.5 if o == TIE else 0.0 for _, o in cast)
        share = for_first / len(cast)
        chosen, rejected = (first, second) if share >= 0.5 else (second, first)
        rows.append({
            "prompt": payload["conversation"],
            "chosen": [{"role": "assistant", "content": payload["replies"][chosen]}],
            "rejected": [{"role": "assistant", "content": payload["replies"][rejected]}],
            "id": f"{cast[0][0]['task']}/{cast[0][0]['key']}/{chosen}-{rejected}",
            "prompt_id": str(payload["prompt_id"]), "split": payload.get("split") or "train",
            "task": cast[0][0]["task"], "preference": round(max(share, 1 - share), 6),
            "labellers": len(cast), "labeller_ids": sorted(l["pseudonym"] for l, _ in cast),
            "instructions_sha256": sorted({l["instructions_sha256"] or "" for l, _ in cast})})
    return rows


def demonstration_rows(labels: list[dict]) -> list[dict]:
    rows = []
    for label in labels:
        rewrite = label["answer"].get("rewrite")
        if rewrite:
            payload = label["payload"]
            rows.append({"messages": payload["conversation"]
                         + [{"role": "assistant", "content": rewrite}],
                         "prompt_id": str(payload["prompt_id"]),
                         "split": payload.get("split") or "train",
                         "labeller_id": label["pseudonym"], "score": label["answer"]["score"]})
    return rows


def _write_splits(folder: Path, rows: list[dict], schema: pa.Schema) -> dict[str, int]:
    by_split: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_split[row["split"]].append(row)
    for split, members in by_split.items():
        write_parquet(folder / split_file_name(split, 0, 1), members, schema)
    return {split: len(members) for split, members in sorted(by_split.items())}

