"""The one list of kinds: ids to classes, argument validation, and IFEval's loose verdict.

Everything that names a kind (the principle schema, `checks list`, the docs) reads it from here.
"""

from __future__ import annotations

import difflib
from functools import cache, lru_cache
from typing import Any, Mapping, Sequence

from selfalign.checks.base import Argument, Check, CheckArgumentError, Verdict, spec_arguments
from selfalign.checks.when import WHEN, parse_when

_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
}


@cache
def check_kinds() -> dict[str, type[Check]]:
    """Every kind by id, IFEval's first (in its own group order), then selfalign's own."""
    from selfalign.checks import own
    from selfalign.checks import ifeval

    kinds = {cls.kind: cls for cls in (*ifeval.KINDS, *own.KINDS)}
    return kinds


def build_check(spec: Mapping[str, Any]) -> Check:
    """A check from its mapping (`{"kind": ..., **arguments}`); CheckArgumentError names the key."""
    kinds = check_kinds()
    kind = spec.get("kind")
    if kind is None:
        raise CheckArgumentError(None, "a check needs `kind:` (see `selfalign checks list`)")
    if not isinstance(kind, str) or kind not in kinds:
        raise CheckArgumentError("kind", _unknown(f"check kind '{kind}'", str(kind), list(kinds)))
    cls = kinds[kind]
    args = spec_arguments(spec)
    for name, value in args.items():
        if name not in cls.arguments:
            allowed = list(cls.arguments) or ["(none: this kind takes no arguments)"]
            raise CheckArgumentError(name, _unknown(f"argument '{name}' of {kind}", name, allowed))
        problem = _argument_problem(cls.arguments[name], value)
        if problem:
            raise CheckArgumentError(name, f"{name}: {value!r} {problem}")
    missing = [name for name, arg in cls.arguments.items() if arg.required and name not in args]
    if missing:
        raise CheckArgumentError(missing[0], f"{kind} needs `{missing[0]}` "
                                             f"({cls.arguments[missing[0]].help})")
    filled = {name: arg.default for name, arg in cls.arguments.items()
              if not arg.required and name not in args and arg.default is not None}
    check = cls(**filled, **args)
    if WHEN in spec:
        check.when = parse_when(spec[WHEN])
    return check


def checks_from_instructions(instruction_ids: Sequence[str],
                             kwargs: Sequence[Mapping[str, Any]]) -> list[Check]:
    """The checks of one IFEval-format prompt (`instruction_id_list`, `kwargs`), in its order."""
    return [build_check({"kind": kind, **{k: v for k, v in args.items() if v is not None}})
            for kind, args in zip(instruction_ids, kwargs, strict=True)]


CONSTITUTION = "constitution"  # the owner of checks a manifest applies to every principle


def check_ids(owner: str, checks: Sequence[Check]) -> list[str]:
    """Stable names for an owner's checks, as figures and traces report them: `owner/kind`,
    and `owner/kind#n` for the n-th check of a kind the owner lists more than once."""
    seen: dict[str, int] = {}
    ids = []
    for check in checks:
        seen[check.kind] = seen.get(check.kind, 0) + 1
        n = seen[check.kind]
        ids.append(f"{owner}/{check.kind}" if n == 1 else f"{owner}/{check.kind}#{n}")
    return ids


def shared_not_held(ids: Sequence[str], shared: Sequence[Check],
                    own: Sequence[Check]) -> tuple[list[str], list[Check]]:
    """The constitution's checks (with their ids) less those a principle also holds, the same
    kind, arguments and `when:`: such a check runs once, under the principle's name, so a
    constitution can hold every principle to a rule its own principle already carries without
    the rule being counted, retried and reported twice."""
    held = [check.spec() for check in own]
    kept = [(i, check) for i, check in zip(ids, shared, strict=True) if check.spec() not in held]
    return [i for i, _ in kept], [check for _, check in kept]


def _unknown(what: str, name: str, available: list[str]) -> str:
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
    hint = f" Did you mean: {close[0]}?" if close else ""
    return f"Unknown {what}.{hint} Available: {', '.join(available)}"


def _argument_problem(arg: Argument, value: Any) -> str | None:
    """Why `value` does not fit `arg`, or None. bool is not an integer here, as in JSON Schema."""
    expected = _JSON_TYPES[arg.type]
    if isinstance(value, bool) and arg.type != "boolean" or not isinstance(value, expected):
        return f"is not {_A_TYPE[arg.type]}"
    if arg.type == "array" and arg.items:
        for item in value:
            if isinstance(item, bool) or not isinstance(item, _JSON_TYPES[arg.items]):
                return f"holds {item!r}, which is not {_A_TYPE[arg.items]}"
            if arg.choices and item not in arg.choices:
                return f"holds {item!r}; each item must be one of {', '.join(map(str, arg.choices))}"
    elif arg.choices and value not in arg.choices:
        return f"is not one of: {', '.join(repr(c) for c in arg.choices)}"
    if arg.minimum is not None and arg.type in ("integer", "number") and value < arg.minimum:
        return f"is below the minimum {arg.minimum:g}"
    return None


_A_TYPE = {"string": "text", "integer": "a whole number", "number": "a number",
           "boolean": "true or false", "array": "a list"}


# ---------------------------------------------------------------- IFEval's loose verdict

@lru_cache(maxsize=8)
def loose_views(reply: str) -> tuple[str, ...]:
    """The reply as IFEval's loose scoring sees it: without its first line, without its last
    line, without both, and the reply and each of those with every `*` taken out (markdown
    bold); each distinct non-blank view once, the reply itself not among them. Kept for the
    last replies, so all the checks of one reply share its views (and what is counted in them)."""
    lines = reply.split("\n")
    trimmed = [reply, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(),
               "\n".join(lines[1:-1]).strip()]
    if "*" in reply:  # without one, the stripped views are the same texts again
        trimmed += [view.replace("*", "") for view in trimmed]
    return tuple(dict.fromkeys(view for view in trimmed[1:] if view.strip() and view != reply))


def loose_verdict(check: Check, reply: str, prompt: str, strict: Verdict | None = None) -> Verdict:
    """Passes when any non-blank view passes; otherwise the strict verdict's message. `strict`,
    when the caller has it already, spares checking the reply itself a second time."""
    strict = strict or check.verify(reply, prompt)
    if strict.passed or not check.loose_can_pass(strict):
        return strict
    for view in loose_views(reply):
        if check.verify(view, prompt).passed:
            return Verdict(True, "passes once the first or last line or the `*`s are set aside")
    return strict
