"""Reading a configuration document: YAML (or JSON) to plain values, each with its line.

PyYAML's compose keeps every node's position, so an error anywhere later (the schema,
an unknown user, a repository outside the organisation) names the line and the path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match

from teams.config.schema import SCHEMA

Path = tuple[str | int, ...]


def path_text(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


@dataclass(frozen=True)
class Problem:
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, path {self.path}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "path": self.path, "message": self.message}


class ConfigError(Exception):
    """The document cannot be applied; every problem names its place in the file."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Document:
    data: dict[str, Any]
    text: str
    lines: dict[Path, int] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def organisation(self) -> str:
        return str(self.data["organisation"])

    def line(self, path: Path) -> int:
        # The nearest node that has a line: a missing key is reported at its parent.
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, path: Path, message: str) -> Problem:
        return Problem(self.line(path), path_text(path), message)


class _Reader:
    def __init__(self) -> None:
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self.scalars = yaml.constructor.SafeConstructor()
        self.collections: set[int] = set()

    def value(self, node: yaml.Node, path: Path) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.CollectionNode):
            # An alias makes a node appear twice: nested ones multiply without bound.
            if id(node) in self.collections:
                self._problem(node, path, "aliases (*name) are not allowed; write it out")
                return None
            self.collections.add(id(node))
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalars.construct_object(key_node)
                if not isinstance(key, str):
                    self._problem(key_node, path, f"keys must be strings, not {key!r}")
                    continue
                if key in result:
                    self._problem(key_node, (*path, key), f"{key!r} is given twice")
                    continue
                result[key] = self.value(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalars.construct_object(node)

    def _problem(self, node: yaml.Node, path: Path, message: str) -> None:
        self.problems.append(Problem(node.start_mark.line + 1, path_text(path), message))


def parse(text: str) -> Document:
    """The document, checked against the schema; ConfigError naming every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(line, "(document)", f"not valid YAML: {reason}")]) from None
    if node is None:
        raise ConfigError([Problem(1, "(document)", "the document is empty")])
    reader = _Reader()
    data = reader.value(node, ())
    if reader.problems:
        raise ConfigError(reader.problems)
    document = Document(data=data, text=text, lines=reader.lines)
    if not isinstance(data, dict):
        raise ConfigError([document.problem((), "the document must be a mapping")])
    problems = schema_problems(document)
    if problems:
        raise ConfigError(problems)
    return document


def schema_problems(document: Document) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems: list[Problem] = []
    for error in validator.iter_errors(document.data):
        problems.extend(_explain(document, error))
    return sorted(problems, key=lambda p: (p.line, p.path))


def _explain(document: Document, error: SchemaError) -> list[Problem]:
    path: Path = tuple(error.absolute_path)
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = schema.get("properties", {})
        return [
            document.problem((*path, key), f"unknown key {key!r}")
            for key in error.instance
            if key not in known
        ]
    if error.validator == "oneOf":
        options = schema.get("oneOf", [])
        subjects = [o["required"][0] for o in options if set(o) == {"required"}]
        if subjects:
            return [document.problem(path, f"name exactly one of {', '.join(subjects)}")]
        if path and path[-1] == "secret":
            message = "a secret is {env: NAME} or {file: PATH}; never written inline"
            return [document.problem(path, message)]
        if error.context:
            return _explain(document, best_match(error.context))
    return [document.problem(path, error.message)]
