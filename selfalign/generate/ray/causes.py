"""Ray's errors in one line: what happened to a worker, as Ray tells it, without its pages of
actor ids and tracebacks."""

from __future__ import annotations

# Lines of Ray's messages that say where, not why.
_WHERE = ("class_name:", "actor_id:", "pid:", "name:", "namespace:", "ip:")
_GENERIC = ("The actor died unexpectedly before finishing this task.",
            "The actor experienced an error before finishing this task.")
MAX_CHARS = 300


def ray_cause(err: BaseException) -> str:
    """The cause Ray gives for `err` (out of memory, a crash, an import error on the node, the
    node gone), on one line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if getattr(err, "actor_init_failed", False) or "Traceback" in str(err):
        # An exception in the actor's creation or a task: its last line names it
        # ("ModuleNotFoundError: No module named 'selfalign'").
        errors = [line for line in lines if _looks_like_exception(line)]
        if errors:
            return _short(errors[-1])
    told = [line for line in lines if not line.startswith(_WHERE) and line not in _GENERIC]
    return _short(told[0]) if told else type(err).__name__


def _looks_like_exception(line: str) -> bool:
    head = line.split(":", 1)[0]
    return ":" in line and " " not in head and head.endswith(("Error", "Exception", "Exit"))


def _short(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
