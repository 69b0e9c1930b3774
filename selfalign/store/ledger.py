"""What a run keeps on disk to survive a crash: fingerprint, ledger of finished shards, resume."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from selfalign.errors import UserError
from selfalign.store.checksums import mismatch, sha256_file
from selfalign.store.layout import MANIFEST, SHARD_KINDS, ledger_path, shard_dir, state_dir
from selfalign.store.shard_files import recorded_file


# -- fingerprints --------------------------------------------------------------------------

def input_hashes(paths: list[str]) -> dict[str, str]:
    """sha256 of every input file (a folder: each data file in it); stdin cannot be hashed."""
    hashes = {}
    for path in paths:
        if path == "-":
            hashes["-"] = "stdin"
            continue
        p = Path(path)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            hashes[str(f)] = sha256_file(f)
    return hashes


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human sentences naming what differs between two fingerprints."""
    changes = []
    for key in sorted(set(old.get("config", {})) | set(new.get("config", {}))):
        a, b = old.get("config", {}).get(key), new.get("config", {}).get(key)
        if a != b:
            changes.append(f"setting {key}: was {a!r}, now {b!r}")
    for group, noun in (("principle_files", "principle file"), ("inputs", "input")):
        before, after = old.get(group, {}), new.get(group, {})
        for name in sorted(set(before) | set(after)):
            if name not in after:
                changes.append(f"{noun} {name}: no longer given")
            elif name not in before:
                changes.append(f"{noun} {name}: new since the run started")
            elif before[name] != after[name]:
                changes.append(f"{noun} {name}: content changed (sha256 differs)")
    return changes


# -- the output folder ---------------------------------------------------------------------

def prepare_output_folder(out: Path, resume: bool) -> None:
    """Refuse to overwrite; make sure we can write before any model loads."""
    has_content = out.exists() and any(out.iterdir())
    if has_content and not resume:
        raise UserError(f"output folder {out} is not empty; pass --resume to continue the run "
                        f"that wrote it, or choose another --out")
    if resume and not (out / MANIFEST).exists():
        raise UserError(f"--resume: {out} holds no manifest.json, so there is no run to resume; "
                        f"drop --resume to start a new run")
    try:
        shard_dir(out).mkdir(parents=True, exist_ok=True)
        probe = state_dir(out) / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to output folder {out}: {err.strerror}") from None


# -- the ledger of finished shards ---------------------------------------------------------

def _entries(out: Path) -> Iterator[tuple[int, dict]]:
    """(line number, entry) of every whole line; a torn last line (killed mid-write) is
    skipped: its shard is redone."""
    path = ledger_path(out)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError:
                continue


def read_ledger(out: Path, without: tuple[str, ...] = ()) -> dict[int, dict]:
    """Finished shards by index (the last entry of a shard recorded twice wins). `without`
    leaves bulky fields out, such as `judgments` (see `ledger_field`)."""
    done: dict[int, dict] = {}
    for _, entry in _entries(out):
        for key in without:
            entry.pop(key, None)
        done[entry["shard"]] = entry
    return done


def ledger_field(out: Path, key: str) -> Iterator:
    """`entry[key]` of each shard's winning entry, read as a stream (two passes over the file):
    a run's judgments need not all be in memory at once."""
    winner: dict[int, int] = {}
    for number, entry in _entries(out):
        winner[entry["shard"]] = number
    wanted = set(winner.values())
    for number, entry in _entries(out):
        if number in wanted:
            yield entry.get(key)


def append_ledger(out: Path, entry: dict) -> None:
    """Record a finished shard; written after its files, so a recorded shard is complete.

    A write error (a full disk) cuts the ledger back to where it was: no half entry stays.
    """
    path = ledger_path(out)
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        before = handle.tell()
        try:
            if before > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a torn line from a kill: end it so ours stands alone
                    handle.write(b"\n")
            handle.write((json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            handle.truncate(before)
            raise


def resume_command(out: Path) -> str:
    return f"selfalign generate --out {out} --resume"


class OutputWriteError(UserError):
    """Writing the run's files failed (a full disk, a lost mount); what was recorded stands."""


@contextmanager
def writing(out: Path, what: str) -> Iterator[None]:
    """Turn a write error into a stop that says what failed and how to resume. Files are
    written under temporary names and the ledger is cut back on failure, so nothing partial
    is left under a final name or recorded."""
    try:
        yield
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise OutputWriteError(
            f"could not write {what}{where}: {err.strerror or err}. Nothing half-written was "
            f"kept; finished shards are kept in {out}. After freeing space (or fixing the "
            f"cause), resume with:\n  {resume_command(out)}") from None


# -- are the recorded shards still what was written? ---------------------------------------

def shard_problems(out: Path, entry: dict) -> list[tuple[Path, str]]:
    """The recorded shard's files that cannot be trusted, each with why; empty if all match.

    Entries written before files were checksummed can only be checked for presence.
    """
    recorded = entry.get("files")
    problems = []
    for kind in SHARD_KINDS:
        path = recorded_file(out, entry, kind)
        if recorded:
            why = mismatch(path, recorded[kind])
        else:
            why = None if path.is_file() else "missing"
        if why:
            problems.append((path, why))
    return problems


def trusted_shards(out: Path, ledger: dict[int, dict], log) -> dict[int, dict]:
    """The recorded shards whose files still match the ledger; says which others are redone."""
    kept = {}
    for index, entry in sorted(ledger.items()):
        problems = shard_problems(out, entry)
        if problems:
            why = "; ".join(f"{path.name} {reason}" for path, reason in problems)
            log(f"shard {index} will be redone: {why}")
        else:
            kept[index] = entry
    return kept
