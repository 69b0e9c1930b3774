"""YAML text to plain data, safely, remembering the line of every key and list item.

Built on yaml.SafeLoader, so a tag such as `!!python/object/apply:os.system` can never build an
object: it fails to parse and becomes a problem that names the file and the line.
"""

from __future__ import annotations

import yaml

from selfalign.errors import Problem


class LineDict(dict):
    """A mapping that knows the line of each of its keys (1-based)."""

    line: int
    key_lines: dict[str, int]


class LineList(list):
    """A list that knows the line of each of its items (1-based)."""

    line: int
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and lists carry line numbers; repeated keys are recorded."""

    def __init__(self, stream):
        super().__init__(stream)
        self.repeated_keys: list[tuple[str, int, int]] = []


def _key_text(node: yaml.Node) -> str:
    # Keys as written: `yes:` stays "yes" and `1.0:` stays "1.0", instead of YAML 1.1's guesses.
    return node.value if isinstance(node, yaml.ScalarNode) else f"<{node.id}>"


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    data = LineDict()
    data.line, data.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key, line = _key_text(key_node), key_node.start_mark.line + 1
        if key in data:
            loader.repeated_keys.append((key, data.key_lines[key], line))
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line
    return data


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    items = LineList(loader.construct_object(child, deep=True) for child in node.value)
    items.line, items.item_lines = node.start_mark.line + 1, [c.start_mark.line + 1 for c in node.value]
    return items


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def parse_yaml(text: str, shown: str) -> tuple[object, list[Problem]]:
    """Parse one YAML document; a syntax error or an object-building tag is a problem, not a crash."""
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        return None, [_syntax_problem(err, shown)]
    finally:
        loader.dispose()
    repeated = [Problem(shown, second, key, f"key `{key}` appears twice (lines {first} and {second}); "
                        "YAML keeps only the last one, so delete or rename one of them")
                for key, first, second in loader.repeated_keys]
    return data, repeated


def _syntax_problem(err: yaml.MarkedYAMLError, shown: str) -> Problem:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark else None
    if isinstance(err, yaml.constructor.ConstructorError) and "tag" in (err.problem or ""):
        tag = (err.problem.split("'")[1:2] or ["?"])[0].replace("tag:yaml.org,2002:", "!!")
        return Problem(shown, line, None, f"the tag `{tag}` is not allowed: these files hold plain data "
                       "(text, numbers, lists, mappings) and nothing in them is run; remove the tag")
    where = f" (column {mark.column + 1})" if mark else ""
    start = err.context_mark if err.context else None
    started = f" that starts on line {start.line + 1}" if start else ""
    what = f"{err.context}{started}, {err.problem}" if err.context else err.problem
    return Problem(shown, line, None, f"this is not valid YAML: {what}{where}")
