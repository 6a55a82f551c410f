"""YAML checked against a JSON Schema, with each problem named by file, line and key path.

Shared by the lineage YAML and linkage configs. A subschema may carry ``x-message``: the
sentence a user sees when it fails, instead of jsonschema's generic one.

>>> document, lines = compose_with_lines("a:\\n  b: [1, {c: 2}]\\n", "f.yml")
>>> document, lines[("a", "b", 1, "c")]
({'a': {'b': [1, {'c': 2}]}}, 2)
>>> schema = {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}
>>> schema_problems(schema, {"a": 1, "x": 2}, {("a",): 1, ("x",): 2}, "f.yml")
["f.yml:1: a: 1 is not of type 'string'", 'f.yml:2: x: unknown key (allowed: a)']
"""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from mlstream.errors import UserError


def schema_problems(schema: dict, document: Any, lines: dict[tuple, int], source: str) -> list[str]:
    """Every place ``document`` breaks ``schema``, in file order."""
    found = [problem for error in jsonschema.Draft202012Validator(schema).iter_errors(document)
             for problem in _describe(error)]
    return [f"{at(path, lines, source)}: {message}"
            for path, message in sorted(found, key=lambda p: (lines.get(p[0], 0), list(map(str, p[0]))))]


def at(path: list | tuple, lines: dict[tuple, int], source: str) -> str:
    """``file:line: dotted.path`` of one place in a document."""
    return f"{source}:{lines.get(tuple(path), 0)}: {dotted(path) or '(top level)'}"


def dotted(path: list | tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def _describe(error: jsonschema.ValidationError) -> list[tuple[tuple, str]]:
    """(path, message) of each problem in one error: an unknown key is named by its own path."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [((*path, key), f"unknown key (allowed: {', '.join(sorted(known))})")
                for key in error.instance if key not in known]
    message = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if message and error.validator == "enum":
        message += f" (got {error.instance!r})"
    return [(path, message or error.message)]


def compose_with_lines(text: str, source: str, error: type[UserError] = UserError) -> tuple[Any, dict[tuple, int]]:
    """The YAML as plain data, and path -> 1-based line of each node (a key's line for mappings);
    bad YAML, an empty document or a repeated key raises ``error``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise error(f"{source}{line}: not valid YAML: {getattr(err, 'problem', err)}") from err
    if node is None:
        return None, {}
    lines: dict[tuple, int] = {}
    constructor = yaml.SafeLoader("")

    def build(node, path: tuple):
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result = {}
            for key_node, value_node in node.value:
                key = constructor.construct_object(key_node, deep=True)
                if key in result:
                    raise error(f"{source}:{key_node.start_mark.line + 1}: {dotted([*path, key])}: duplicate key")
                lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return constructor.construct_object(node, deep=True)

    return build(node, ()), lines
