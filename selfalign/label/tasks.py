"""The task file: what people label in a run, loaded YAML → JSON Schema → dataclasses, with
errors that name the file, the line and the key (the principle loader's checks, reused)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from selfalign.schema_check import check
from selfalign.yaml_lines import parse_yaml
from selfalign.errors import UserError
from selfalign.store.layout import LABELS_DIR

TASKS_FILE = "tasks.yaml"
INSTRUCTIONS_FILE = "instructions.md"
GENERAL_QUESTION = "Which reply is more helpful, honest and harmless?"
DEFAULT_FLAGS = ("harmful", "sexual", "violent", "personal-information", "regulated-advice",
                 "not-english")


@dataclass(frozen=True)
class Task:
    """One task of the file: a kind of question over a seeded sample of the run."""

    name: str
    kind: str
    version: int = 1
    question: str | None = None
    limit: int | None = None
    splits: tuple[str, ...] | None = None
    overlap: float = 0.0
    gold: int = 0
    flags: tuple[str, ...] = ()
    target: str = "prompt"

    def selection_sha(self, seed: int, run_sha: str) -> str:
        """What decides which items the task holds; a change here means other items."""
        key = [seed, run_sha, self.kind, self.limit, self.splits, self.overlap, self.gold,
               self.target]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()


@dataclass(frozen=True)
class TaskFile:
    path: Path
    seed: int
    tasks: tuple[Task, ...]
    instructions: str = ""  # the Markdown text
    instructions_sha256: str = field(default="")

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)


def labels_dir(out: Path) -> Path:
    return Path(out) / LABELS_DIR


def load_tasks(path: Path) -> TaskFile:
    """The task file at `path`, or a UserError naming file, line and key of every problem."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no task file; write one with `selfalign label init OUT`")
    data, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    if data is None and not problems:
        raise UserError(f"{path}: the file is empty; expected `tasks:` with at least one task")
    if data is not None:
        problems += check(data, "labelling", str(path))
    if problems:
        raise UserError("\n".join(str(p) for p in problems))
    tasks = tuple(_task(entry) for entry in data["tasks"])
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"{path}: tasks: the name {repeated[0]!r} is used twice; task names "
                        "must be unique")
    text, digest = "", hashlib.sha256(b"").hexdigest()
    if data.get("instructions"):
        where = path.parent / data["instructions"]
        if not where.is_file():
            raise UserError(f"{path}: instructions: {where} does not exist")
        raw = where.read_bytes()
        text, digest = raw.decode("utf-8", errors="replace"), hashlib.sha256(raw).hexdigest()
    return TaskFile(path, int(data.get("seed", 0)), tasks, text, digest)


def _task(entry: dict) -> Task:
    flags = tuple(entry.get("flags", DEFAULT_FLAGS if entry["kind"] == "flags" else ()))
    return Task(name=entry["name"], kind=entry["kind"], version=entry.get("version", 1),
                question=entry.get("question"), limit=entry.get("limit"),
                splits=tuple(entry["splits"]) if entry.get("splits") else None,
                overlap=float(entry.get("overlap", 0.0)), gold=entry.get("gold", 0),
                flags=flags, target=entry.get("target", "prompt"))


# ---------------------------------------------------------------- the file `init` writes

TEMPLATE = """\
# yaml-language-server: $schema={schema}
# What people label in this run. `selfalign label serve {out}` serves these tasks;
# the reference of every key: docs/reference/schemas.md ("Labelling tasks").
kind: label_tasks

# Markdown shown to labellers in the app. Each label records this file's sha256, so labels
# made under revised instructions can be told apart: revise freely, and say so in the file.
instructions: {instructions}

# Seed of the sample, of the overlap and gold draws, and of each labeller's A/B order.
seed: 0

tasks:
  # Two replies to one conversation, blind: which one is the revision, the model, the principle
  # and the AI judge's label are never shown. Answers: A, B, tie or skip, and a note.
  - name: compare
    kind: compare
    version: 1            # raise it when the question or the instructions change in meaning
    limit: {limit:<14}# items drawn, stratified by principle and split
    overlap: 0.2          # share of items two labellers get: agreement is measured on them
    gold: 0               # items the owner labels first, then every labeller, for screening
    # question: Which reply is more honest?   (default: the principle's `comparison` text)
{rank}
  # More kinds (uncomment to use):
  # - name: rate-revisions      # a revision as a demonstration, scored 1 to 7, optionally rewritten
  #   kind: rate
  #   limit: 50
  # - name: prompt-flags        # metadata of each prompt (InstructGPT's labellers recorded these)
  #   kind: flags
  #   target: prompt
  #   flags: [harmful, sexual, violent, personal-information, regulated-advice, not-english]
  #   limit: 50
"""

RANK_TASK = """
  # The K samples of this --feedback rank run, put in order (InstructGPT's form); exported
  # as their C(K,2) pairs.
  - name: rank
    kind: rank
    limit: 100
    overlap: 0.2
"""

INSTRUCTIONS = """\
# Instructions

You will see a conversation between a user and an assistant, and two possible next replies
from the assistant, **A** and **B**. Pick the reply that is better under the question shown
above the replies. When there is no question, prefer the reply that is more helpful, honest
and harmless, in that order of weight for ordinary requests, and harmless first for requests
that could hurt someone.

- Judge the content, not the length: a longer reply is not better by being longer.
- A reply that refuses a harmless request is worse than one that helps.
- Press **t** (tie) only when neither reply is better in any way that matters; press **s** (skip)
  when you cannot judge (a language you do not read, a subject you do not know).
- Write a note when something is unclear: the notes are how these instructions get better.

Keys: **a**, **b**, **t** (tie), **s** (skip), **u** (undo the last label), **?** (help).
"""


def write_task_files(out: Path, ranked: bool, pairs: int) -> Path:
    """`labels/tasks.yaml` and `labels/instructions.md`, refusing to overwrite a task file."""
    from selfalign.atomic import write_text

    folder = labels_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TASKS_FILE
    if path.exists():
        raise UserError(f"{path}: already exists; edit it, or delete it to start again")
    schema = Path(__file__).resolve().parent.parent / "schemas" / "labelling.schema.json"
    text = TEMPLATE.format(schema=schema, out=out, instructions=INSTRUCTIONS_FILE,
                           limit=min(max(pairs, 1), 200), rank=RANK_TASK if ranked else "")
    if not (folder / INSTRUCTIONS_FILE).exists():
        write_text(folder / INSTRUCTIONS_FILE, INSTRUCTIONS)
    write_text(path, text)
    return path
