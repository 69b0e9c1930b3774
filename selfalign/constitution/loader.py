"""Layer 3: files, folders, manifests and globs to one typed Constitution, with every problem collected.

What a YAML file is: its `kind` (principle | exemplar | constitution) when given; otherwise a file
with a top-level `principles:` key is a constitution manifest, one with `principle:` or `prompt:`
is an exemplar, and anything else is a principle. A folder stands for every *.yaml / *.yml below it.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from selfalign.constitution.check_specs import build_checks, check_problems
from selfalign.constitution.model import (
    Constitution, ConstitutionError, Exemplar, Principle, Problem, unknown_name)
from selfalign.schema_check import check, field_name, line_of, suggest
from selfalign.yaml_lines import parse_yaml

YAML_SUFFIXES = (".yaml", ".yml")
_MAGIC = re.compile(r"[*?[]")
_EMPTY = ("file is empty: expected a principle (`name`, `critique_request`, `revision_request`), "
          "an exemplar, or a constitution manifest (`principles:`)")


def load_constitution(paths: Sequence[str | Path]) -> Constitution:
    """Load principle files, folders and manifests as one constitution; raise with ALL problems."""
    library = _Library()
    constitution = library.build(library.expand_arguments(paths))
    if not constitution.principles and not library.problems:
        library.problems.append(Problem(", ".join(map(str, paths)), None, None, "no principles found"))
    if library.problems:
        raise ConstitutionError(library.unique_problems())
    return constitution


def check_paths(paths: Sequence[str | Path]) -> tuple[Constitution, list[Problem]]:
    """What `selfalign validate` runs: each manifest is loaded on its own (manifests may disagree on
    rounds and weights), then every principle and exemplar reached is loaded together, which checks
    that names are unique across the whole library."""
    library = _Library()
    docs = [doc for doc in map(library.read, library.expand_arguments(paths)) if doc]
    manifests = [doc for doc in docs if doc.kind == "constitution"]
    for manifest in manifests:
        library.build([manifest.path])
    reached = [doc.path for doc in library.valid_docs() if doc.kind != "constitution"]
    everything = library.build(reached)
    files = {doc.shown: doc.sha256 for doc in library.valid_docs()}
    summary = dataclasses.replace(everything, files=files, manifests=tuple(m.shown for m in manifests))
    return summary, library.unique_problems()


def display(path: Path) -> str:
    """A path as people read it: relative to the working folder when inside it."""
    relative = os.path.relpath(path, Path.cwd().resolve())
    return Path(path).as_posix() if relative.startswith("..") else Path(relative).as_posix()


@dataclasses.dataclass(frozen=True)
class _Doc:
    path: Path
    shown: str
    sha256: str
    kind: str
    data: dict


class _Library:
    """Reads each file once and collects every problem met on the way."""

    def __init__(self):
        self.problems: list[Problem] = []
        self._docs: dict[Path, _Doc | None] = {}
        self._broken_names: set[str] = set()   # names in files with problems: not "unknown" as well

    def unique_problems(self) -> list[Problem]:
        return list(dict.fromkeys(self.problems))

    def valid_docs(self) -> list[_Doc]:
        return [doc for doc in self._docs.values() if doc]

    def _add(self, doc: _Doc, path: list, message: str) -> None:
        line, field = line_of(doc.data, path), field_name(path) or None
        self.problems.append(Problem(doc.shown, line, field, message))

    # ---- files -------------------------------------------------------------------------------

    def read(self, path: Path) -> _Doc | None:
        path = Path(path).resolve()
        if path not in self._docs:
            self._docs[path] = self._read(path)
        return self._docs[path]

    def _read(self, path: Path) -> _Doc | None:
        shown = display(path)
        text, sha256 = self._text(path, shown)
        if text is None:
            return None
        data, problems = parse_yaml(text, shown)
        if data is None and not problems:
            problems = [Problem(shown, None, None, _EMPTY)]
        kind = _kind(data)
        if data is not None:
            problems += check(data, kind, shown) + check_problems(data, shown)
        if not problems:
            problems = _nonfinite(data, shown) + _turn_order(data, shown)
        self.problems += sorted(problems, key=lambda p: p.line or 0)
        if problems:
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                self._broken_names.add(data["name"])
            return None
        return _Doc(path, shown, sha256, kind, data)

    def _text(self, path: Path, shown: str) -> tuple[str | None, str]:
        try:
            raw = path.read_bytes()
        except OSError as err:
            self.problems.append(Problem(shown, None, None, f"cannot be read: {err.strerror}"))
            return None, ""
        try:
            return raw.decode("utf-8"), hashlib.sha256(raw).hexdigest()
        except UnicodeDecodeError as err:
            message = (f"is not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start}); "
                       "save it as UTF-8")
            self.problems.append(Problem(shown, None, None, message))
            return None, ""

    # ---- paths and globs ---------------------------------------------------------------------

    def expand_arguments(self, paths: Sequence[str | Path]) -> list[Path]:
        files = []
        for path in paths:
            found = _expand(str(path), Path.cwd())
            if not found:
                self.problems.append(Problem(str(path), None, None, _no_match(str(path), Path.cwd())))
            files += found
        return files

    def _follow(self, manifest: _Doc, key: str, kind: str) -> list[_Doc]:
        """The files of kind `kind` that a manifest's `key` list names, checked to be of that kind."""
        docs = []
        for index, entry in enumerate(manifest.data.get(key, [])):
            found = _expand(entry, manifest.path.parent)
            if not found:
                self._add(manifest, [key, index], _no_match(entry, manifest.path.parent))
            for doc in filter(None, map(self.read, found)):
                if doc.kind != kind:
                    self._add(manifest, [key, index], f"`{doc.shown}` is a {doc.kind} file, but `{key}` "
                              f"lists {kind} files")
                else:
                    docs.append(doc)
        return docs

    # ---- building ----------------------------------------------------------------------------

    def build(self, files: list[Path]) -> Constitution:
        docs = _unique(filter(None, map(self.read, files)))
        manifests = [doc for doc in docs if doc.kind == "constitution"]
        principle_docs = [doc for doc in docs if doc.kind == "principle"]
        exemplar_docs = [doc for doc in docs if doc.kind == "exemplar"]
        for manifest in manifests:
            principle_docs += self._follow(manifest, "principles", "principle")
        # Manifest exemplars first, in the order listed: that order is the few-shot prefix.
        listed = [doc for m in manifests for doc in self._follow(m, "exemplars", "exemplar")]
        exemplar_docs = listed + exemplar_docs
        principles = self._principles(_unique(principle_docs), self._weights(manifests))
        self._check_weight_names(manifests, principles)
        exemplars = self._exemplars(_unique(exemplar_docs), principles)
        used = _unique(manifests + principle_docs + exemplar_docs)
        return Constitution(
            principles=tuple(sorted(principles, key=lambda p: p.name)),
            exemplars=exemplars,
            system_prompt=_text_or_none(self._setting(manifests, ["system_prompt"])),
            rounds=self._setting(manifests, ["rounds"]),
            checks=_manifest_checks(manifests),
            files={doc.shown: doc.sha256 for doc in used},
            manifests=tuple(m.shown for m in manifests))

    def _principles(self, docs: list[_Doc], weights: dict[str, float]) -> list[Principle]:
        first: dict[str, _Doc] = {}
        for doc in docs:
            name = doc.data["name"]
            if name in first:
                where = f"{first[name].shown}:{line_of(first[name].data, ['name'])}"
                self._add(doc, ["name"], f"principle `{name}` is also defined in {where}; "
                          "names must be unique, so rename one of them")
            else:
                first[name] = doc
        return [_principle(doc, weights.get(name)) for name, doc in first.items()]

    def _exemplars(self, docs: list[_Doc], principles: list[Principle]) -> tuple[Exemplar, ...]:
        names = [p.name for p in principles]
        exemplars, first = [], {}
        for doc in docs:
            name, principle = doc.data["name"], doc.data["principle"]
            if principle not in names:
                if principle not in self._broken_names:
                    self._add(doc, ["principle"], unknown_name("principle", principle, names))
            elif name in first:
                self._add(doc, ["name"], f"exemplar `{name}` is also defined in {first[name]}")
            else:
                first[name] = doc.shown
                exemplars.append(_exemplar(doc.data, name, principle, doc.shown))
        return tuple(exemplars)

    def _weights(self, manifests: list[_Doc]) -> dict[str, float]:
        names = dict.fromkeys(name for m in manifests for name in m.data.get("weights", {}))
        return {name: self._setting(manifests, ["weights", name]) for name in names}

    def _check_weight_names(self, manifests: list[_Doc], principles: list[Principle]) -> None:
        names = [p.name for p in principles]
        for manifest in manifests:
            for name in manifest.data.get("weights", {}):
                if name not in names and name not in self._broken_names:
                    self._add(manifest, ["weights", name], unknown_name("principle", name, names))

    def _setting(self, manifests: list[_Doc], path: list):
        """A value the manifests set; when several set it they must agree."""
        found = [(m, _get(m.data, path)) for m in manifests if _get(m.data, path) is not None]
        if not found:
            return None
        (first, value), field = found[0], field_name(path)
        for manifest, other in found[1:]:
            if other != value:
                self._add(manifest, path, f"`{field}` is {other!r} here but {value!r} in {first.shown}; "
                          "manifests loaded together must agree: load one of them, or make them equal")
        return value


# ---- helpers -----------------------------------------------------------------------------------

def _kind(data: object) -> str:
    if not isinstance(data, dict):
        return "principle"
    if data.get("kind") in ("principle", "exemplar", "constitution"):
        return data["kind"]
    if "principles" in data:
        return "constitution"
    return "exemplar" if "principle" in data or "prompt" in data else "principle"


def _nonfinite(data: dict, shown: str) -> list[Problem]:
    # JSON Schema's exclusiveMinimum lets .nan and .inf through; a draw cannot use them.
    weights = [(["weight"], data.get("weight"))]
    weights += [(["weights", name], value) for name, value in data.get("weights", {}).items()]
    return [Problem(shown, line_of(data, path), field_name(path),
                    f"must be a finite number greater than 0, found {value}")
            for path, value in weights if isinstance(value, float) and not math.isfinite(value)]


def _turn_order(data: dict, shown: str) -> list[Problem]:
    # The schema checks each turn; the order is what makes `prompt` the next user turn.
    for index, turn in enumerate(data.get("context", [])):
        expected = "user" if index % 2 == 0 else "assistant"
        if turn["role"] != expected:
            return [Problem(shown, line_of(data, ["context", index]), f"context[{index}].role",
                            f"expected `{expected}`, found `{turn['role']}`: the earlier turns "
                            "alternate user, assistant, ..., starting with a user turn")]
    if len(data.get("context", [])) % 2:
        return [Problem(shown, line_of(data, ["context"]), "context",
                        "ends with a user turn; the earlier turns end with the assistant's answer, "
                        "and `prompt` is the next user turn")]
    return []


def _principle(doc: _Doc, weight_override: float | None) -> Principle:
    data, name = doc.data, doc.data["name"]
    examples = tuple(_exemplar(example, example.get("name") or f"{name}-example-{i}", name, doc.shown)
                     for i, example in enumerate(data.get("examples", []), 1))
    version = data.get("version")
    return Principle(
        name=name,
        critique_request=data["critique_request"].strip(),
        revision_request=data["revision_request"].strip(),
        comparison=_text_or_none(data.get("comparison")),
        description=_text_or_none(data.get("description")),
        tags=tuple(data.get("tags", ())),
        weight=float(weight_override if weight_override is not None else data.get("weight", 1)),
        version=None if version is None else str(version),
        examples=examples,
        checks=build_checks(data.get("checks")),
        path=doc.shown,
        sha256=doc.sha256)


def _manifest_checks(manifests: list[_Doc]) -> tuple:
    """Every manifest's checks apply to every principle; one listed by two manifests, once."""
    unique: list[dict] = []
    for spec in (entry for manifest in manifests for entry in manifest.data.get("checks", [])):
        if spec not in unique:
            unique.append(spec)
    return build_checks(unique)


def _exemplar(data: dict, name: str, principle: str, shown: str) -> Exemplar:
    # Outer whitespace is dropped (a `|` block ends in a newline); the text itself is left verbatim.
    turns = {key: data[key].strip() for key in ("prompt", "response", "critique", "revision")}
    context = tuple((turn["role"], turn["content"].strip()) for turn in data.get("context", []))
    return Exemplar(name=name, principle=principle, path=shown, context=context, **turns)


def _text_or_none(value: str | None) -> str | None:
    return None if value is None else value.strip()


def _get(data: dict, path: list):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _unique(docs) -> list[_Doc]:
    return list({doc.path: doc for doc in reversed(list(docs))}.values())[::-1]


def _expand(entry: str, base: Path) -> list[Path]:
    """Files an entry names: a file, a folder (every YAML file below it) or a glob (`**` allowed)."""
    full = base / entry
    if _MAGIC.search(entry):
        matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True))
        matches = [m for m in matches if m.is_dir() or m.suffix in YAML_SUFFIXES]
    else:
        matches = [full] if full.exists() else []
    files = []
    for match in matches:
        files += sorted(p for p in match.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()) \
            if match.is_dir() else [match]
    return files


def _no_match(entry: str, base: Path) -> str:
    what = "matches no file" if _MAGIC.search(entry) else "no such file or folder"
    folder = "the working folder" if display(base) == "." else f"the folder `{display(base)}`"
    message = f"`{entry}` {what}" + ("" if Path(entry).is_absolute() else f" (relative to {folder})")
    fixed = _nearest_path(entry, base)
    return message + (f"; did you mean `{fixed}`?" if fixed else "")


def _nearest_path(entry: str, base: Path) -> str | None:
    """The entry with each missing folder or file name replaced by the closest existing one."""
    parts, current = [], base
    for i, part in enumerate(Path(entry).parts):
        if _MAGIC.search(part):
            parts += Path(entry).parts[i:]
            break
        if not (current / part).exists():
            siblings = [p.name for p in current.iterdir()] if current.is_dir() else []
            part = suggest(part, siblings)
            if part is None:
                return None
        parts.append(part)
        current = current / part
    fixed = Path(*parts).as_posix() if parts else None
    return fixed if fixed and fixed != entry and _expand(fixed, base) else None
