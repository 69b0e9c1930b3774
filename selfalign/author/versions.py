"""The other version `--against` compares with: another file, or the file as git has it.

`--against OLD.yaml` loads OLD.yaml in place of the first path; `--against REV` (HEAD, HEAD~1, a
tag, any revision git knows) loads the first path's text at that revision. The old text is put
beside the file under a hidden name while it loads, so the paths a manifest lists resolve as they
do for the file itself, and problems in it are reported as `REV:path`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Sequence

from selfalign.constitution import Constitution, load_constitution
from selfalign.constitution.loader import display
from selfalign.constitution.model import ConstitutionError
from selfalign.errors import Problem, UserError


def load_other_version(paths: Sequence[Path], against: str) -> tuple[str, Constitution]:
    """(label, constitution) of the version `against` names, the other paths unchanged."""
    first, rest = Path(paths[0]), list(paths[1:])
    if first.is_dir():
        raise UserError(f"--against compares one file, and {first} is a folder: name the "
                        f"principle or manifest file you changed first")
    if Path(against).is_file():
        return display(Path(against).resolve()), load_constitution([Path(against), *rest])
    label = f"{against}:{display(first.resolve())}"
    text = git_text(first, against)
    hidden = first.parent / f".{first.stem}.{os.getpid()}.against{first.suffix}"
    hidden.write_bytes(text)
    try:
        return label, load_constitution([hidden, *rest])
    except ConstitutionError as err:
        shown = display(hidden.resolve())
        raise ConstitutionError([Problem(label if p.file == shown else p.file, p.line, p.field,
                                         p.message) for p in err.problems]) from None
    finally:
        hidden.unlink(missing_ok=True)


def git_text(path: Path, revision: str) -> bytes:
    """`git show REV:path` for a file in a git work tree, with a plain error otherwise."""
    folder = path.resolve().parent
    try:
        top = _git(folder, "rev-parse", "--show-toplevel").decode().strip()
        inside = path.resolve().relative_to(Path(top).resolve()).as_posix()
        return _git(folder, "show", f"{revision}:{inside}")
    except FileNotFoundError:
        raise UserError(f"--against {revision}: git is not installed; give the old version as "
                        f"a file instead") from None
    except subprocess.CalledProcessError as err:
        why = err.stderr.decode(errors="replace").strip().splitlines()
        raise UserError(f"--against {revision}: neither a file nor a git revision that has "
                        f"{display(path.resolve())} ({why[-1] if why else 'git failed'})") from None


def _git(folder: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                          check=True).stdout
