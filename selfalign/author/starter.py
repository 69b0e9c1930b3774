"""The file `principles new` writes: every key a principle has, commented, and checks to start
from, with the `$schema` line that lets an editor complete keys and check kinds."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import yaml

import selfalign
from selfalign.checks import check_kinds
from selfalign.constitution.model import unknown_name
from selfalign.errors import UserError

SCHEMA = Path(selfalign.__file__).resolve().parent / "schemas" / "principle.schema.json"
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

_TEMPLATE = """\
# yaml-language-server: $schema={schema}
# One principle: how the model critiques its last reply, and how it rewrites it. Try it on a
# few sample prompts while you edit it (the model stays loaded; every save runs it again):
#   selfalign principles try {path} --watch
{name_line}# unique, kebab-case; recorded with every row made under it
version: "1"                  # bump it when you change the wording
description: >-               # for people; never shown to the model
  What this principle catches, in a sentence.
tags: [helpful]               # harmless / honest / helpful, or your own kebab-case tags
weight: 1                     # how often it is drawn beside the others (> 0)
critique_request: >-          # the user turn that asks for a critique of "your last reply"
  Point out the parts of your last reply that do not help the user: what is missing, what is
  wrong, and what could go.
revision_request: >-          # the user turn that asks for the rewrite: say what it must do
  Rewrite your reply so that it fixes what you pointed out, keeping what was useful.
comparison: >-                # the question an AI judge answers when it compares two replies
  Which reply helps the user more?
"""


def starter_text(name: str, kinds: Sequence[str], path: Path) -> str:
    """The commented file; each check kind listed with its example arguments."""
    text = _TEMPLATE.format(schema=schema_reference(path), name_line=f"{'name: ' + name:<30}",
                            path=path.as_posix())
    if not kinds:
        return text + ("# checks:                    # rules code verifies on every answer and "
                       "revision\n#   - kind: length_constraints:number_words   "
                       "# `selfalign checks list` lists the kinds\n")
    text += "checks:                       # rules code verifies on every answer and revision\n"
    for kind in kinds:
        cls = check_kinds()[kind]
        text += f"  - kind: {kind}\n"
        for argument, value in cls.example.items():
            dumped = yaml.safe_dump({argument: value}, default_flow_style=True, width=1000)
            help_text = cls.arguments[argument].help.splitlines()[0]
            text += f"    {dumped.strip()[1:-1]:<25} # {help_text}\n"
    return text


def schema_reference(path: Path) -> str:
    """The schema relative to the file inside this repository (as the shipped principles
    have it); the installed schema's absolute path for a file anywhere else."""
    repository = SCHEMA.parent.parent.parent
    folder = path.resolve().parent
    if folder.is_relative_to(repository):
        return Path(os.path.relpath(SCHEMA, folder)).as_posix()
    return SCHEMA.as_posix()


def write_starter(name: str, kinds: Sequence[str], path: Path, force: bool = False) -> Path:
    """Write the file, refusing a bad name, an unknown kind or an existing file."""
    if not KEBAB.match(name):
        raise UserError(f"name {name!r}: a principle's name is kebab-case (lowercase letters, "
                        f"digits and single dashes), e.g. no-fabrication")
    for kind in kinds:
        if kind not in check_kinds():
            raise UserError("--checks: " + unknown_name("check kind", kind, list(check_kinds())))
    if path.exists() and not force:
        raise UserError(f"{path} exists already; choose another --out or add --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_text(name, kinds, path), encoding="utf-8")
    return path
