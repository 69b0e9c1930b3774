"""`selfalign principles import`: published constitutions in JSON to principle, exemplar and manifest YAML.

Each input file is recognised by its keys:
- critique/revision instructions keyed by name, as the Constitutional AI paper's repository has
  them: `{"<name>": {"prompt": ["\\n\\nCritiqueRequest: ...\\n\\nCritique:"], "edit_request":
  "\\n\\nRevisionRequest: ...\\n\\nRevision:"}}`; the framing labels are stripped;
- few-shot transcripts, a list of "Human: / Assistant: / CritiqueRequest: / Critique: /
  RevisionRequest: / Revision:" texts, as in the same repository;
- comparison principles, a list of questions for a judge (a trailing "Options:" is stripped);
- the Hugging Face recipe: `{"constitutions": [{"critic", "revision"}], "system_chat":
  [[{"role", "content"}, ...], ...]}`, each `system_chat` conversation a few-shot example.

Several files may be imported together, as the paper's repository splits them. Names come from
the keys (`harmful0`), else from the first words of the critique request, kebab-case, made unique
with `-2`, `-3`. When there are exactly as many comparison questions as principles, question i
becomes the `comparison` of principle i, in file order. The sources do not say that question i
belongs to instruction i; pairing by position only gives every principle a question a judge can
ask. Otherwise each question becomes a principle of its own, whose critique and revision requests
ask for the standard the question names. A few-shot example becomes an exemplar of the principle
whose critique request it uses (compared ignoring case and spacing); one that does not parse, or
uses no imported principle's request, becomes a note at the top of the manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from selfalign.schema_check import kebab_case
from selfalign.errors import UserError
from selfalign.prompts.conversations import TRANSCRIPT_ROLES, split_transcript

MANIFEST = "constitution.yaml"
FRAMING_ROLES = {"CritiqueRequest": "user", "Critique": "assistant",
                 "RevisionRequest": "user", "Revision": "assistant"}
FEWSHOT_LABELS = {**TRANSCRIPT_ROLES, **FRAMING_ROLES}
NAME_WORDS = 5  # words of a text that name it when it has no key
EXPECTED_SHAPES = (
    "an object with `constitutions` (a list of {`critic`, `revision`}) and optionally "
    "`system_chat` (the Hugging Face recipe)",
    "an object whose entries each have `prompt` and `edit_request` (critique and revision "
    "instructions)",
    "a list of few-shot transcripts with `Human:`, `Assistant:`, `CritiqueRequest:`, `Critique:`, "
    "`RevisionRequest:` and `Revision:` turns",
    "a list of comparison questions (text)",
)


@dataclass
class ImportedPrinciple:
    name: str
    critique_request: str
    revision_request: str
    description: str
    comparison: str | None = None


@dataclass
class ImportedExemplar:
    name: str
    principle: str
    description: str
    context: list[dict[str, str]]
    prompt: str
    response: str
    critique: str
    revision: str


@dataclass
class _FewShot:
    """A parsed few-shot conversation, not yet matched to a principle."""

    where: str
    turns: list[tuple[str, str]]


@dataclass
class ImportResult:
    """What an import wrote: the manifest, and what it holds."""

    manifest: Path
    principles: list[ImportedPrinciple] = field(default_factory=list)
    exemplars: list[ImportedExemplar] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        compared = sum(p.comparison is not None for p in self.principles)
        return (f"{_count(len(self.principles), 'principle')} ({compared} with a comparison "
                f"question), {_count(len(self.exemplars), 'exemplar')}, "
                f"{_count(len(self.notes), 'note')} -> {self.manifest}")


def import_constitution(files: Sequence[str | Path], out: str | Path, force: bool = False) -> ImportResult:
    """Convert the JSON files into YAML under `out`; refuse to overwrite anything unless `force`."""
    out = Path(out)
    collected = _Collected()
    for path in map(Path, files):
        collected.read(path)
    if not collected.principles and not collected.comparisons:
        raise UserError(f"{', '.join(map(str, files))}: no critique/revision instructions or "
                        "comparison questions found; a few-shot file needs its instructions "
                        "imported with it.")
    result = ImportResult(out / MANIFEST, notes=collected.notes)
    result.principles = collected.principles_with_comparisons(result.notes)
    result.exemplars = _exemplars(collected.fewshots, result.principles, result.notes)
    _write(_files(result, [Path(f).name for f in files], out), force)
    return result


# ---------------------------------------------------------------- reading


class _Collected:
    """Everything read from the input files, in file order."""

    def __init__(self) -> None:
        self.principles: list[ImportedPrinciple] = []
        self.comparisons: list[tuple[str, str]] = []  # (where, question)
        self.fewshots: list[_FewShot] = []
        self.notes: list[str] = []

    def read(self, path: Path) -> None:
        data = _load_json(path)
        shape = _shape(data)
        if shape is None:
            raise UserError(f"{path}: not a constitution this command can import; found "
                            f"{_describe(data)}. Expected one of:\n  - " + "\n  - ".join(EXPECTED_SHAPES))
        getattr(self, f"_read_{shape}")(data, path.name)

    def _read_recipe(self, data: dict, source: str) -> None:
        for index, entry in enumerate(_list(data["constitutions"], f"{source}: `constitutions`")):
            where = f"{source} constitutions[{index}]"
            texts = [entry.get(key) if isinstance(entry, dict) else None for key in ("critic", "revision")]
            if not all(isinstance(t, str) for t in texts):
                self.notes.append(f"{where}: needs text `critic` and `revision`; skipped")
                continue
            self._add_principle(None, *texts, where)
        for index, conversation in enumerate(_list(data.get("system_chat", []), f"{source}: `system_chat`")):
            self._add_fewshot(f"{source} system_chat[{index}]", message_turns(conversation))

    def _read_instructions(self, data: dict, source: str) -> None:
        for key, entry in data.items():
            critiques = entry["prompt"] if isinstance(entry["prompt"], list) else [entry["prompt"]]
            for number, critique in enumerate(critiques, start=1):
                name = key if len(critiques) == 1 else f"{key}-{number}"
                texts = (critique, entry["edit_request"])
                if not all(isinstance(t, str) for t in texts):
                    self.notes.append(f"{source} {name}: `prompt` and `edit_request` must be text; skipped")
                    continue
                self._add_principle(name, *texts, f"{source} ({key})")

    def _read_transcripts(self, data: list[str], source: str) -> None:
        for index, text in enumerate(data):
            self._add_fewshot(f"{source} [{index}]", transcript_turns(text))

    def _read_comparisons(self, data: list[str], source: str) -> None:
        for index, text in enumerate(data):
            question = re.sub(r"\s*Options:\s*$", "", text.strip())
            if question:
                self.comparisons.append((f"{source} [{index}]", question))
            else:
                self.notes.append(f"{source} [{index}]: empty comparison question; skipped")

    def _add_fewshot(self, where: str, turns: list[tuple[str, str]] | str) -> None:
        """Keep a parsed example for matching; one that did not parse (`turns` says why) is a note."""
        if isinstance(turns, str):
            self.notes.append(f"{where}: {turns}; not imported")
        else:
            self.fewshots.append(_FewShot(where, turns))

    def _add_principle(self, key: str | None, critique: str, revision: str, where: str) -> None:
        critique, revision = _unframe(critique, "CritiqueRequest"), _unframe(revision, "RevisionRequest")
        if not critique or not revision:
            self.notes.append(f"{where}: empty critique or revision request; skipped")
            return
        name = _unique(kebab_case(key) if key else _name_from(critique), self.principles)
        self.principles.append(ImportedPrinciple(name, critique, revision, f"Imported from {where}."))

    def principles_with_comparisons(self, notes: list[str]) -> list[ImportedPrinciple]:
        if not self.comparisons:
            return self.principles
        if len(self.comparisons) == len(self.principles):
            for principle, (_, question) in zip(self.principles, self.comparisons):
                principle.comparison = question
            notes.append(f"the {len(self.comparisons)} comparison questions were paired with the "
                         f"{len(self.principles)} principles by position (question i with principle i)")
            return self.principles
        if self.principles:
            notes.append(f"{len(self.comparisons)} comparison questions for {len(self.principles)} "
                         "principles: each question became a principle of its own")
        principles = list(self.principles)
        for where, question in self.comparisons:
            principles.append(ImportedPrinciple(
                _unique(_name_from(question), principles),
                f"Point out where your last reply falls short of this standard: {question}",
                f"Rewrite your last reply so that it meets this standard: {question}",
                f"Imported comparison question from {where}; its critique and revision requests "
                "ask for the standard the question names.", question))
        return principles


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as err:
        raise UserError(f"Cannot read {path}: {err.strerror}.") from err
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte offset {err.start}).") from err
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}: not valid JSON: {err.msg} (column {err.colno}).") from err


def _shape(data: Any) -> str | None:
    if isinstance(data, dict) and "constitutions" in data:
        return "recipe"
    if isinstance(data, dict) and data and all(
            isinstance(v, dict) and {"prompt", "edit_request"} <= v.keys() for v in data.values()):
        return "instructions"
    if isinstance(data, list) and data and all(isinstance(x, str) for x in data):
        has_turns = any(split_transcript(x, FEWSHOT_LABELS)[1] for x in data)
        return "transcripts" if has_turns else "comparisons"
    return None


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        keys = list(data)
        more = f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
        return f"an object with keys {', '.join(map(str, keys[:8]))}{more}" if keys else "an empty object"
    if isinstance(data, list):
        kinds = sorted({type(x).__name__ for x in data})
        return f"a list of {len(data)} ({', '.join(kinds) or 'nothing'})"
    return f"a JSON {type(data).__name__}"


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise UserError(f"{what} must be a list, found {_describe(value)}.")
    return value


def _unframe(text: str, label: str) -> str:
    """The request inside "\\n\\nCritiqueRequest: ...\\n\\nCritique:" framing, or the text itself."""
    preamble, segments = split_transcript(text, FRAMING_ROLES)
    found = [body for name, body in segments if name == label]
    return found[0] if found else preamble.strip()


# ---------------------------------------------------------------- few-shot examples


def transcript_turns(text: str) -> list[tuple[str, str]] | str:
    """(role, text) turns of a few-shot transcript, or why it does not parse."""
    preamble, segments = split_transcript(text, FEWSHOT_LABELS)
    while segments and segments[-1] == ("Human", ""):  # transcripts end by opening the next turn
        segments.pop()
    if preamble.strip():
        return "text before its first turn label"
    labels = [label for label, _ in segments]
    if labels[-4:] != list(FRAMING_ROLES):
        return "does not end with CritiqueRequest, Critique, RevisionRequest, Revision"
    if any(label not in TRANSCRIPT_ROLES for label in labels[:-4]):
        return "has critique or revision turns before its last exchange"
    return [(FEWSHOT_LABELS[label], body) for label, body in segments]


def message_turns(conversation: Any) -> list[tuple[str, str]] | str:
    if not isinstance(conversation, list):
        return f"is {_describe(conversation)}, expected a list of messages"
    turns = []
    for message in conversation:
        if not (isinstance(message, dict) and message.get("role") in ("user", "assistant")
                and isinstance(message.get("content"), str)):
            return "holds a message without a user/assistant `role` and text `content`"
        turns.append((message["role"], message["content"].strip()))
    return turns


def _exemplars(fewshots: list[_FewShot], principles: list[ImportedPrinciple],
               notes: list[str]) -> list[ImportedExemplar]:
    by_request = {_fold(p.critique_request): p for p in reversed(principles)}
    exemplars: list[ImportedExemplar] = []
    for fewshot in fewshots:
        problem = _turn_problem(fewshot.turns)
        principle = None if problem else by_request.get(_fold(fewshot.turns[-4][1]))
        if principle is None:
            problem = problem or "its critique request is not one of the imported principles"
            notes.append(f"{fewshot.where}: {problem}; not imported")
            continue
        texts = [text for _, text in fewshot.turns]
        prompt, response, _, critique, _, revision = texts[-6:]
        exemplars.append(ImportedExemplar(
            _unique(_name_from(texts[0]), exemplars), principle.name,
            f"Few-shot example imported from {fewshot.where}.",
            [{"role": role, "content": text} for role, text in fewshot.turns[:-6]],
            prompt, response, critique, revision))
    return exemplars


def _turn_problem(turns: list[tuple[str, str]]) -> str | None:
    if len(turns) < 6 or len(turns) % 2:
        return (f"has {len(turns)} turns; an example is user/assistant exchanges ending with a "
                "critique and a revision")
    for index, (role, text) in enumerate(turns):
        if role != ("user" if index % 2 == 0 else "assistant"):
            return f"turn {index + 1} is a {role} turn out of order; turns alternate, user first"
        if not text:
            return f"turn {index + 1} is empty"
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _name_from(text: str) -> str:
    return kebab_case(" ".join(text.split()[:NAME_WORDS]))


def _unique(name: str, taken: list) -> str:
    names = {item.name for item in taken}
    candidate, number = name, 1
    while candidate in names:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


# ---------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    """Readable YAML for texts: `|` blocks for several lines, `>-` folding for long ones."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else (">" if len(text) > 80 else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def _yaml(data: dict[str, Any], comments: list[str] = ()) -> str:
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=96)
    return "".join(f"# {line}\n" for line in comments) + body


def _files(result: ImportResult, sources: list[str], out: Path) -> dict[Path, str]:
    files: dict[Path, str] = {}
    for p in result.principles:
        data = {"name": p.name, "description": p.description, "critique_request": p.critique_request,
                "revision_request": p.revision_request}
        data |= {"comparison": p.comparison} if p.comparison else {}
        files[out / "principles" / f"{p.name}.yaml"] = _yaml(data)
    for e in result.exemplars:
        data = {"name": e.name, "principle": e.principle, "description": e.description}
        data |= {"context": e.context} if e.context else {}
        data |= {"prompt": e.prompt, "response": e.response, "critique": e.critique, "revision": e.revision}
        files[out / "exemplars" / f"{e.name}.yaml"] = _yaml(data)
    manifest = {"kind": "constitution", "name": kebab_case(out.resolve().name),
                "description": f"Imported from {', '.join(sources)} by `selfalign principles import`.",
                "principles": [f"principles/{p.name}.yaml" for p in result.principles]}
    if result.exemplars:
        manifest["exemplars"] = [f"exemplars/{e.name}.yaml" for e in result.exemplars]
    comments = [f"Imported from {', '.join(sources)} by `selfalign principles import`."]
    comments += [f"note: {note}" for note in result.notes]
    files[result.manifest] = _yaml(manifest, comments)
    return files


def _write(files: dict[Path, str], force: bool) -> None:
    existing = [path for path in files if path.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:5])
        shown += f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        raise UserError(f"{len(existing)} of the files to write exist already ({shown}); pass --force "
                        "to replace them, or choose another --out.")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
