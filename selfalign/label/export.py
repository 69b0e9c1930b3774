"""`label export`: people's labels as a folder that `train rm --data` and `eval judge --pairs`
read as they are: manifest.json and prefs/<split>-00000-of-00001.parquet in TRL's
conversational form, plus sft/ with the demonstrations labellers wrote.

One row per comparison: for a `compare` item its two replies, for a `rank` item each of its
C(K,2) pairs. `preference` is the share of labellers (skips left out) who preferred `chosen`,
a tie counting half for each side, or, with `drop_ties`, not at all.
"""

from __future__ import annotations

import io
import json
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

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
    labels = project.db.all_labels(payloads=False)
    prefs = pair_table(labels, drop_ties)
    sft = pa.Table.from_pylist(demonstration_rows(labels), schema=SFT_SCHEMA)
    if not prefs.num_rows and not sft.num_rows:
        raise UserError(f"{project.labels_dir}: no labels to export yet")
    counts = {"prefs": _write_splits(out / "prefs", prefs),
              "sft": _write_splits(out / "sft", sft)}
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


def pair_table(labels: list[dict], drop_ties: bool = False) -> pa.Table:
    """The prefs rows, one per comparison, from labels whose payloads are JSON text. The votes
    are counted in Python; the texts (conversation, replies) go from the payloads' JSON to the
    table in Arrow, never through Python objects: at 100,000 labels that decoding was most of
    the export's time."""
    votes: dict[tuple, list[tuple[dict, object]]] = defaultdict(list)
    for label in labels:
        for comparison, outcome in comparisons(label).items():
            if outcome == TIE and drop_ties:
                continue
            votes[(label["item"], comparison)].append((label, outcome))
    payload_row: dict[int, int] = {}  # item id → its row among the payloads read
    payloads: list[str] = []
    column = defaultdict(list)
    for (item, comparison), cast in votes.items():
        first, second = map(int, comparison.split("-"))
        for_first = sum(1.0 if o == first else 0.5 if o == TIE else 0.0 for _, o in cast)
        share = for_first / len(cast)
        chosen, rejected = (first, second) if share >= 0.5 else (second, first)
        label = cast[0][0]
        if item not in payload_row:
            payload_row[item] = len(payloads)
            payloads.append(label["payload"])
        column["payload"].append(payload_row[item])
        column["chosen"].append(chosen)
        column["rejected"].append(rejected)
        column["id"].append(f"{label['task']}/{label['key']}/{chosen}-{rejected}")
        column["task"].append(label["task"])
        column["preference"].append(round(max(share, 1 - share), 6))
        column["labellers"].append(len(cast))
        column["labeller_ids"].append(sorted(l["pseudonym"] for l, _ in cast))
        column["instructions_sha256"].append(sorted({l["instructions_sha256"] or ""
                                                     for l, _ in cast}))
    items = _read_payloads(payloads)
    rows = pa.array(column["payload"], pa.int64())
    split = items["split"].take(rows)
    return pa.Table.from_arrays([
        items["conversation"].take(rows),
        _assistant_turns(_replies(items, rows, column["chosen"])),
        _assistant_turns(_replies(items, rows, column["rejected"])),
        pa.array(column["id"], pa.string()), items["prompt_id"].take(rows),
        pc.if_else(pc.fill_null(pc.equal(split, ""), True), "train", split),
        *(pa.array(column[name], PREFS_SCHEMA.field(name).type) for name in
          ("task", "preference", "labellers", "labeller_ids", "instructions_sha256"))],
        schema=PREFS_SCHEMA)


PAYLOAD_SCHEMA = pa.schema([("conversation", MESSAGES), ("replies", pa.list_(pa.string())),
                            ("prompt_id", pa.string()), ("split", pa.string())])


def _read_payloads(payloads: list[str]) -> pa.Table:
    """Items' payloads (one line of JSON each, as the database holds them) as one table."""
    if not payloads:
        return PAYLOAD_SCHEMA.empty_table()
    options = pa_json.ParseOptions(explicit_schema=PAYLOAD_SCHEMA,
                                   unexpected_field_behavior="ignore")
    return pa_json.read_json(io.BytesIO("\n".join(payloads).encode("utf-8")),
                             parse_options=options).combine_chunks()


def _replies(items: pa.Table, rows: pa.Array, which: list[int]) -> pa.Array:
    """For each row, reply number `which` of its item."""
    replies = items["replies"].chunk(0) if items.num_rows else pa.array([], pa.list_(pa.string()))
    starts = replies.offsets.take(rows)
    return replies.values.take(pc.add(starts.cast(pa.int64()), pa.array(which, pa.int64())))


def _assistant_turns(texts: pa.Array) -> pa.Array:
    """`[{"role": "assistant", "content": text}]` for each text."""
    turns = pa.StructArray.from_arrays([pa.array(["assistant"] * len(texts), pa.string()), texts],
                                       names=["role", "content"])
    return pa.ListArray.from_arrays(pa.array(range(len(texts) + 1), pa.int32()), turns)


def demonstration_rows(labels: list[dict]) -> list[dict]:
    rows = []
    for label in labels:
        rewrite = label["answer"].get("rewrite")
        if rewrite:
            payload = json.loads(label["payload"])  # JSON text: see export_labels
            rows.append({"messages": payload["conversation"]
                         + [{"role": "assistant", "content": rewrite}],
                         "prompt_id": str(payload["prompt_id"]),
                         "split": payload.get("split") or "train",
                         "labeller_id": label["pseudonym"], "score": label["answer"]["score"]})
    return rows


def _write_splits(folder: Path, table: pa.Table) -> dict[str, int]:
    counts = {}
    for split in sorted(set(table["split"].to_pylist())):
        members = table.filter(pc.equal(table["split"], split))
        write_parquet(folder / split_file_name(split, 0, 1), members, table.schema)
        counts[split] = members.num_rows
    return counts
