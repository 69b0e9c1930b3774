"""`selfalign verify OUT`: is this output folder still what its run wrote?

For a training team receiving a dataset: every final file against the size and sha256 the
manifest recorded, row counts against the ledger's sums, and for an unfinished run every
recorded shard against its ledger entry. A folder received without `.selfalign/` is checked as
far as the manifest allows, and the report says what could not be checked.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from selfalign.errors import UserError
from selfalign.store.checksums import mismatch
from selfalign.store.layout import LABEL_EXPORT_FORMAT, MANIFEST, ledger_path
from selfalign.store.ledger import read_ledger, resume_command, shard_problems
from selfalign.store.lock import describe, holder_alive, read_holder
from selfalign.store.reader import final_files


UNFINISHED = 3  # exit status of `verify` for an intact run that has not finished


@dataclass
class Verdict:
    status: str
    checked: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "empty")

    @property
    def exit_status(self) -> int:
        """0 complete and intact; 1 damaged; 3 intact so far but not finished."""
        if not self.ok:
            return 1
        return 0 if self.finished else UNFINISHED

    def report(self, out: Path) -> str:
        lines = [f"{out}: run status {self.status}"]
        lines += [f"  checked: {line}" for line in self.checked]
        lines += [f"  cannot check: {line}" for line in self.unchecked]
        lines += [f"  PROBLEM: {line}" for line in self.problems]
        if not self.ok:
            lines.append(f"{len(self.problems)} problem(s): do not use this data as it is")
        elif not self.finished:
            lines.append("unfinished: what is recorded holds, but the run has not written its "
                         "data yet")
        else:
            lines.append("ok: everything checked holds")
        return "\n".join(lines)


def verify_folder(out: Path) -> Verdict:
    manifest_path = out / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{out} holds no manifest.json: it is not a `selfalign generate` output "
                        f"folder, or the manifest was not copied with it; nothing can be checked")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{manifest_path} is not valid JSON ({err}): nothing can be checked "
                        f"against it") from None
    verdict = Verdict(manifest.get("status", "unknown"))
    ledger = read_ledger(out) if ledger_path(out).is_file() else None
    if ledger is None and manifest.get("format") != LABEL_EXPORT_FORMAT:  # exports have none
        verdict.unchecked.append(
            ".selfalign/ (the run's ledger of shards) is absent, as when a folder is copied "
            "without hidden files: shards and row counts against the ledger are not checked; "
            "row counts are checked against the manifest's counts instead")
    holder = read_holder(out)
    if holder is not None and holder_alive(holder) is not False:
        verdict.unchecked.append(f"a run is writing this folder now ({describe(holder)}): "
                                 f"what is checked may change")
    if verdict.status in ("complete", "empty"):
        _check_final_files(out, manifest, verdict)
        _check_row_counts(out, manifest, ledger, verdict)
        if verdict.status == "empty":
            verdict.problems.append("the run found no usable prompt and produced no data")
    else:
        _check_shards(out, ledger, verdict)
    return verdict


def _check_final_files(out: Path, manifest: dict, verdict: Verdict) -> None:
    recorded = manifest.get("files")
    if recorded is None:
        verdict.unchecked.append("final files: the manifest records no sizes or sha256 (written "
                                 "by a selfalign older than checksums)")
        return
    for name, record in sorted(recorded.items()):
        why = mismatch(out / name, record)
        if why:
            verdict.problems.append(f"{name}: {why}")
    for path in final_files(out):
        name = path.relative_to(out).as_posix()
        if name not in recorded:
            verdict.problems.append(f"{name}: not written by this run (absent from the "
                                    f"manifest), yet a reader of {path.parent.name}/ would read it")
    verdict.checked.append(f"{len(recorded)} final files against the size and sha256 in "
                           f"manifest.json")


def _check_row_counts(out: Path, manifest: dict, ledger: dict | None, verdict: Verdict) -> None:
    found, unreadable = _rows_in_files(out)
    if ledger is not None:
        expected, source = _rows_from_ledger(ledger), "the ledger's sums"
    else:
        expected, source = _rows_from_counts(manifest.get("counts", {})), "the manifest's counts"
    wrong = [f"{group}: {found.get(group, 0)} rows, {expected.get(group, 0)} in {source}"
             for group in sorted(set(found) | set(expected))
             if group not in unreadable and found.get(group, 0) != expected.get(group, 0)]
    verdict.problems += wrong
    if not wrong:
        shown = ", ".join(f"{group} {n}" for group, n in sorted(expected.items())
                          if group not in unreadable)
        verdict.checked.append(f"row counts equal {source} ({shown})")
    if unreadable:
        verdict.unchecked.append(f"rows of {', '.join(sorted(unreadable))}: a file there cannot "
                                 f"be read")


def _rows_in_files(out: Path) -> tuple[Counter, set[str]]:
    """Rows per `folder/split` (and rejects) in the parquet files present, and the groups with
    an unreadable file, whose count is unknown (the checksum check already names that file)."""
    rows: Counter = Counter()
    unreadable: set[str] = set()
    for path in final_files(out):
        if path.suffix != ".parquet":
            continue
        group = "rejects" if path.parent == out else \
            f"{path.parent.name}/{path.name.rsplit('-', 3)[0]}"
        try:
            rows[group] += pq.read_metadata(path).num_rows
        except (OSError, ValueError):
            unreadable.add(group)
    return rows, unreadable


def _rows_from_ledger(ledger: dict[int, dict]) -> Counter:
    rows: Counter = Counter()
    for entry in ledger.values():
        for folder, key in (("prefs", "pairs"), ("sft", "sft")):
            for split, n in entry.get(key, {}).items():
                rows[f"{folder}/{split}"] += n
        rows["traces/traces"] += entry.get("traces", 0)
        rows["rejects"] += sum(entry.get("rejects", {}).values())
    return _nonzero(rows)


def _rows_from_counts(counts: dict) -> Counter:
    rows: Counter = Counter()
    # A run counts its pairs as `pairs`, a label export by its folder's name.
    for split, n in (counts.get("pairs") or counts.get("prefs") or {}).items():
        rows[f"prefs/{split}"] += n
    for split, n in counts.get("sft", {}).items():
        rows[f"sft/{split}"] += n
    rows["traces/traces"] += counts.get("samples", 0)  # one trace row per sample
    rows["rejects"] += sum(counts.get("rejects", {}).values())
    return _nonzero(rows)


def _nonzero(rows: Counter) -> Counter:
    return Counter({group: n for group, n in rows.items() if n})


def _check_shards(out: Path, ledger: dict | None, verdict: Verdict) -> None:
    verdict.unchecked.append("final files: the run is not finished, so there are none yet; "
                             f"finish it with `{resume_command(out)}`")
    if ledger is None:
        verdict.problems.append("the run is not finished and its recorded shards "
                                "(.selfalign/) are absent: there is no data to check")
        return
    for index, entry in sorted(ledger.items()):
        for path, why in shard_problems(out, entry):
            verdict.problems.append(f"shard {index}: .selfalign/shards/{path.name} {why} "
                                    f"(resume redoes this shard)")
    prompts = sum(entry["prompts"] for entry in ledger.values())
    verdict.checked.append(f"{len(ledger)} recorded shards ({prompts} prompts) against the "
                           f"size and sha256 in the ledger")
