"""Line-aware, safe YAML loading and schema validation for every user-written file.

Specs, suites, profiles and scenarios all load through :func:`load_yaml`, so every mistake
a user can make is reported the same way: ``file:line: field: what is wrong``. Only the
safe loader's node types are built (no Python object tags); duplicate keys, which PyYAML
would silently overwrite, are errors. Validating a loaded document against its schema, with the
same ``file:line: field:`` location, is :func:`chatprobe.specs.raise_schema_error`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chatprobe.errors import ConfigError

__all__ = ["YamlDoc", "dotted", "load_yaml", "parse_yaml"]

Path_ = tuple[str | int, ...]
# libyaml's composer when available: same nodes and marks, about 10x faster on large suites.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class YamlDoc:
    """A loaded document, with the line (1-based) where each path starts."""

    data: Any
    path: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, where: Iterable[str | int]) -> int | None:
        """Line of ``where``, or of its nearest ancestor that has one."""
        key = tuple(where)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]

    def error(self, message: str, where: Iterable[str | int] = ()) -> ConfigError:
        where = tuple(where)
        return ConfigError(
            message, path=self.path, line=self.line_of(where), field=dotted(where) or None
        )


def dotted(where: Iterable[str | int]) -> str:
    """``("cases", 2, "request")`` -> ``cases[2].request``."""
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_yaml(path: str | Path) -> YamlDoc:
    """Read and parse a YAML file; any problem becomes a :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML file", path=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", path=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(p)) from None
    return parse_yaml(text, str(p))


def parse_yaml(text: str, path: str = "<string>") -> YamlDoc:
    """Parse YAML text into data plus a map of line numbers."""
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise ConfigError(
            f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:  # e.g. a ReaderError for a NUL: one line, with its line
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"invalid YAML: {first}", path=path, line=line) from None
    doc = YamlDoc(data=None, path=path)
    if node is None:
        return doc
    constructor = yaml.SafeLoader("")
    doc.data = _build(node, (), doc, constructor)
    return doc


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _build(node: yaml.Node, where: Path_, doc: YamlDoc, ctor: yaml.SafeLoader) -> Any:
    doc.lines.setdefault(where, node.start_mark.line + 1)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        # e.g. !!python/object/apply on a list: refused, never silently read as plain data
        raise ConfigError(
            f"unsupported YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')}",
            path=doc.path,
            line=node.start_mark.line + 1,
            field=dotted(where) or None,
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(
                    "YAML merge keys (<<) are not supported",
                    path=doc.path,
                    line=key_node.start_mark.line + 1,
                )
            key = _scalar(key_node, doc, ctor)
            if isinstance(key, list | dict):
                raise ConfigError(
                    "mapping keys must be scalars", path=doc.path, line=key_node.start_mark.line + 1
                )
            if key in out:
                raise ConfigError(
                    f"duplicate key {key!r}",
                    path=doc.path,
                    line=key_node.start_mark.line + 1,
                    field=dotted((*where, str(key))),
                )
            child = (*where, str(key) if not isinstance(key, int) else key)
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _build(value_node, child, doc, ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*where, i), doc, ctor) for i, item in enumerate(node.value)]
    return _scalar(node, doc, ctor)


def _scalar(node: yaml.Node, doc: YamlDoc, ctor: yaml.SafeLoader) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return _build(node, (), YamlDoc(None, doc.path), ctor)
    try:
        return ctor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError(
            f"unsupported YAML value: {exc.problem}", path=doc.path, line=node.start_mark.line + 1
        ) from None
