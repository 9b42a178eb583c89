"""``chatprobe derive``: contract suites generated from each provider level's request schema.

For every documented parameter (every top-level property of
``specs/schemas/<level>/request.yaml``, and the nested fields of object, map and array
parameters that carry bounds or enums) the derived suite holds:

* a **typical valid value** (``<param>--valid``), expected to succeed;
* for each bound (``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``,
  ``minLength``, ``maxLength``, ``minItems``, ``maxItems``): the value **on** the bound
  (``--<bound>-valid``, success) and the value **just past** it (``--<bound>-invalid``:
  +-1 for integers, lengths and item counts, +-0.01 for numbers), expected to be refused with
  a 4xx in the provider's envelope;
* for enums: every value (``--enum-<value>``) and one outside (``--enum-invalid``);
* a **wrong type** (``--wrong-type``): the first of a string, an integer, a boolean, a list or
  an object that the schema rejects.

Every generated body is classified by the schema itself before it is written (a "valid" body
must validate, an "invalid" one must not), so the suite cannot drift from the schema it was
derived from. Where the effect of a value can be seen it is expected: ``max_tokens`` on its
minimum of 1 gives at most one completion token and ``finish_reason: length``; ``n``, ``stop``
and ``tool_choice`` are judged by their named checks. ``model`` is exercised with the real
model id, the empty string, a wrong type and an unknown id (a one-character model id cannot
succeed, so its minLength is shown from the failing side only).

Output is deterministic (schema order, no timestamps): ``suites/derived/<level>.yaml`` for
each level some provider profile uses. A test regenerates the suites and fails when the
committed ones are stale. Each suite names its ``schema_level``, so a custom provider (a
profile file, or a ``--base-url`` endpoint) whose profile has that level runs it too. No
shipped profile uses ``openai-strict``, so no suite is derived for it: its request schema is
the whole of OpenAI's API (audio, web search, predicted outputs, service tiers, ...), which
OpenAI-compatible servers do not claim to implement; the hand-written ``parameters`` and
``errors`` suites cover the core parameters and their bounds for such endpoints.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chatprobe import specs
from chatprobe.profiles import list_profiles, load_profile

__all__ = ["BOUNDS", "DerivedCase", "derive_cases", "derive_levels", "render_suite", "write_suites"]

BOUNDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
)
MAX_DEPTH = 3
PROMPT = "Say hello."
BASE_BODY: dict[str, Any] = {
    "model": "{{model}}",
    "messages": [{"role": "user", "content": PROMPT}],
    "max_tokens": 16,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# Known-good values for parameters whose valid shape cannot be guessed from a type alone.
KNOWN: dict[str, list[Any]] = {
    "model": ["{{model}}"],
    "messages": [[{"role": "user", "content": PROMPT}]],
    "messages.0.content": [PROMPT, [{"type": "text", "text": PROMPT}]],
    "stop": [".", [".", "!"]],
    "logit_bias": [{"1234": -5}],
    "tools": [[WEATHER_TOOL]],
    "tool_choice": ["auto", {"type": "function", "function": {"name": "get_weather"}}],
    "response_format": [{"type": "json_object"}],
    "stream_options": [{"include_usage": True}],
    "seed": [42],
    "user": ["chatprobe-user"],
    "models": [["{{model}}"]],
    "transforms": [["middle-out"]],
    "provider": [{"allow_fallbacks": True}],
    "reasoning": [{"effort": "low"}],
    "usage": [{"include": True}],
    "prediction": [{"type": "content", "content": "Hello"}],
    "max_tokens": [16],
}
# Parameters that only make sense together with others.
COMPANIONS: dict[str, dict[str, Any]] = {
    "tool_choice": {"tools": [WEATHER_TOOL]},
    "parallel_tool_calls": {"tools": [WEATHER_TOOL]},
    "stream_options": {"stream": True},
}
WRONG_TYPES: tuple[Any, ...] = (
    "chatprobe-wrong-type",
    123456,
    True,
    ["chatprobe"],
    {"chatprobe": 1},
)
INVALID_ENUM = "chatprobe-invalid"
UNKNOWN_MODEL = "chatprobe-no-such-model"


@dataclass(frozen=True, slots=True)
class DerivedCase:
    name: str
    description: str
    body: dict[str, Any]
    valid: bool
    tags: tuple[str, ...]
    match: tuple[dict[str, Any], ...] = ()

    def to_yaml(self) -> dict[str, Any]:
        case: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "request": {"body": self.body},
        }
        expect: dict[str, Any] = {} if self.valid else {"status": "4xx"}
        if self.match:
            expect["match"] = [dict(m) for m in self.match]
        if expect:
            case["expect"] = expect
        return case


# ---------------------------------------------------------------------- schema walking
@dataclass(slots=True)
class _Site:
    """A place in the request body (``("logit_bias", "*")``) and the schema nodes there."""

    path: tuple[str | int, ...]
    nodes: list[dict[str, Any]] = field(default_factory=list)


class _Resolver:
    """Follows the ``$ref`` forms of the shipped schemas (``#/...`` and ``../<level>/...``)."""

    def __init__(self, level: str) -> None:
        self.level = level

    def resolve(self, node: Any, level: str) -> tuple[dict[str, Any], str]:
        for _ in range(20):
            if not isinstance(node, dict) or "$ref" not in node:
                break
            ref = str(node["$ref"])
            where, _, pointer = ref.partition("#")
            if where:
                parts = Path(where).parts  # ../<level>/<kind>.yaml or <kind>.yaml
                level = parts[-2] if len(parts) >= 2 and parts[-2] != ".." else level
                doc = specs.schema(level, Path(parts[-1]).stem)
            else:
                doc = specs.schema(level, "request")
            target: Any = doc
            for part in [p for p in pointer.split("/") if p]:
                target = target[part.replace("~1", "/").replace("~0", "~")]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **extra}
        return (node if isinstance(node, dict) else {}), level

    def alternatives(self, node: Any, level: str) -> list[tuple[dict[str, Any], str]]:
        """The node and its anyOf/oneOf/allOf branches, resolved (one level of nesting)."""
        node, level = self.resolve(node, level)
        out = [(node, level)]
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in node.get(key) or []:
                out.append(self.resolve(branch, level))
        return out


def _sites(level: str) -> Iterator[_Site]:
    resolver = _Resolver(level)
    root = specs.schema(level, "request")

    def walk(path: tuple[str | int, ...], node: Any, lvl: str) -> Iterator[_Site]:
        alts = resolver.alternatives(node, lvl)
        nodes = [n for n, _ in alts]
        if len(path) == 1 or any(_has_rules(n) for n in nodes):
            yield _Site(path, nodes)
        if len(path) >= MAX_DEPTH:
            return
        for n, nlvl in alts:
            for key, child in (n.get("properties") or {}).items():
                yield from walk((*path, key), child, nlvl)
            if isinstance(n.get("additionalProperties"), dict):
                yield from walk((*path, "*"), n["additionalProperties"], nlvl)
            if isinstance(n.get("items"), dict):
                yield from walk((*path, 0), n["items"], nlvl)

    for name, node in (root.get("properties") or {}).items():
        yield from walk((name,), node, level)


def _has_rules(node: dict[str, Any]) -> bool:
    return any(b in node for b in BOUNDS) or "enum" in node


def _types(nodes: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for n in nodes:
        t = n.get("type")
        out.update([t] if isinstance(t, str) else t or [])
    return out


# ---------------------------------------------------------------------- bodies
def _set(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with ``value`` at ``path``, containers built from known-good values."""
    out = copy.deepcopy(body)
    head = str(path[0])  # a request body's top level is a mapping
    if len(path) == 1:
        out[head] = value
        out.update({k: v for k, v in COMPANIONS.get(str(head), {}).items() if k not in out})
        return out
    if head in out:
        container = copy.deepcopy(out[head])
    else:  # a known-good value of the right shape to put the nested value into
        shape = list if isinstance(path[1], int) else dict
        known = [v for v in KNOWN.get(str(head), []) if isinstance(v, shape)]
        container = copy.deepcopy(known[0]) if known else None
    out[head] = _put(container, path[1:], value)
    out.update({k: v for k, v in COMPANIONS.get(str(head), {}).items() if k not in out})
    return out


def _put(container: Any, path: tuple[str | int, ...], value: Any) -> Any:
    key = path[0]
    if key == 0:
        items = list(container) if isinstance(container, list) and container else [None]
        items[0] = value if len(path) == 1 else _put(items[0], path[1:], value)
        return items
    mapping = dict(container) if isinstance(container, dict) else {}
    if key == "*":
        key = next(iter(mapping), "1234")
    mapping[str(key)] = value if len(path) == 1 else _put(mapping.get(str(key)), path[1:], value)
    return mapping


def _label(path: tuple[str | int, ...]) -> str:
    return ".".join("value" if p == "*" else str(p) for p in path)


def _typical(site: _Site) -> list[Any]:
    name = _label(site.path)
    if name in KNOWN:
        return list(KNOWN[name])
    values: list[Any] = []
    for node in site.nodes:
        if "default" in node:
            values.append(node["default"])
        values.extend(node.get("examples") or [])
        values.extend((node.get("enum") or [])[:1])
    types = _types(site.nodes)
    if "boolean" in types:
        values += [True, False]
    for kind, sample in (("integer", 1), ("number", 0.5), ("string", "chatprobe")):
        if kind in types:
            values.append(sample)
    return values


def _step(nodes: list[dict[str, Any]], bound: Any) -> float | int:
    types = _types(nodes)
    if "integer" in types and "number" not in types:
        return 1
    return 1 if isinstance(bound, int) and "number" not in types else 0.01


def _number(value: float) -> float | int:
    value = round(value, 6)
    return int(value) if float(value).is_integer() and not isinstance(value, bool) else value


def _bound_values(site: _Site, node: dict[str, Any], bound: str) -> tuple[Any, Any] | None:
    """(value on the bound, value just past it) for one bound keyword."""
    limit = node[bound]
    on: str | list[Any]
    if bound in ("minLength", "maxLength"):
        on = "x" * int(limit)
        past = "x" * (int(limit) - 1) if bound == "minLength" else "x" * (int(limit) + 1)
        if bound == "minLength" and limit == 0:
            return None
        return on, past
    if bound in ("minItems", "maxItems"):
        sample = _item_sample(site)
        on = [copy.deepcopy(sample) for _ in range(int(limit))]
        count = int(limit) - 1 if bound == "minItems" else int(limit) + 1
        if count < 0:
            return None
        return on, [copy.deepcopy(sample) for _ in range(count)]
    step = _step(site.nodes, limit)
    if bound == "minimum":
        return _number(limit), _number(limit - step)
    if bound == "maximum":
        return _number(limit), _number(limit + step)
    if bound == "exclusiveMinimum":
        return _number(limit + step), _number(limit)
    return _number(limit - step), _number(limit)


def _item_sample(site: _Site) -> Any:
    for known in KNOWN.get(_label(site.path), []):
        if isinstance(known, list) and known:
            return known[0]
    for node in site.nodes:
        items = node.get("items")
        if isinstance(items, dict):
            if "enum" in items:
                return items["enum"][0]
            kind = items.get("type")
            if kind == "string":
                return "chatprobe"
            if kind in ("number", "integer"):
                return 1
    return "chatprobe"


def _case_name(path: tuple[str | int, ...], kind: str) -> str:
    return f"{_label(path)}--{kind}"


def derive_cases(level: str) -> list[DerivedCase]:
    """The derived cases for ``level``, in schema order, each checked against the schema."""
    validator = specs.validator(level, "request")
    cases: list[DerivedCase] = []
    names: set[str] = set()

    def add(
        path: tuple[str | int, ...],
        kind: str,
        value: Any,
        valid: bool,
        what: str,
        *tags: str,
        match: tuple[dict[str, Any], ...] = (),
        succeeds: bool | None = None,
    ) -> bool:
        """Add a case if the schema agrees that the body is ``valid``; True when added."""
        name = _case_name(path, kind)
        if name in names:
            return False
        body = _set(BASE_BODY, path, value)
        if validator.is_valid(body) != valid:
            return False  # the schema disagrees (e.g. a companion rule): no wrong expectation
        names.add(name)
        ok = valid if succeeds is None else succeeds
        cases.append(
            DerivedCase(
                name=name,
                description=what,
                body=body,
                valid=ok,
                tags=("derived", f"param:{_label(path)}", *tags, "valid" if ok else "invalid"),
                match=match,
            )
        )
        return True

    for site in _sites(level):
        param = _label(site.path)
        nested_enum = len(site.path) > 1 and any("enum" in n for n in site.nodes)
        for value in [] if nested_enum else _typical(site):  # enum values are cases below
            if add(site.path, "valid", value, True, f"A documented value of {param}."):
                break
        for node in site.nodes:
            for bound in BOUNDS:
                if bound not in node:
                    continue
                values = _bound_values(site, node, bound)
                if values is None:
                    continue
                on, past = values
                match: tuple[dict[str, Any], ...] = ()
                if site.path == ("max_tokens",) and bound == "minimum" and on == 1:
                    match = (
                        {"path": "usage.completion_tokens", "range": {"max": 1}},
                        {"path": "choices.0.finish_reason", "equals": "length"},
                    )
                limit = node[bound]
                if site.path == ("model",) and bound == "minLength":
                    pass  # no real model id is that short: shown from the failing side only
                else:
                    add(
                        site.path,
                        f"{bound}-valid",
                        on,
                        True,
                        f"{param} on its {bound} ({limit}): accepted.",
                        f"bound:{bound}",
                        match=match,
                    )
                add(
                    site.path,
                    f"{bound}-invalid",
                    past,
                    False,
                    f"{param} just past its {bound} ({limit}): refused with a 4xx.",
                    f"bound:{bound}",
                )
            for value in node.get("enum") or []:
                add(
                    site.path,
                    f"enum-{value}",
                    value,
                    True,
                    f"{param} = {value!r} (documented).",
                    "enum",
                )
            if node.get("enum"):
                add(
                    site.path,
                    "enum-invalid",
                    INVALID_ENUM,
                    False,
                    f"{param} outside its enum: refused with a 4xx.",
                    "enum",
                )
        for value in WRONG_TYPES:
            kind = type(value).__name__
            if add(
                site.path,
                "wrong-type",
                value,
                False,
                f"{param} of the wrong type ({kind}): refused with a 4xx.",
                "wrong-type",
            ):
                break
        if site.path == ("model",):
            add(
                site.path,
                "unknown",
                UNKNOWN_MODEL,
                True,
                "A model id the provider does not serve: refused with a 4xx.",
                "unknown",
                succeeds=False,
            )
    return cases


def derive_levels() -> dict[str, list[str]]:
    """Schema level -> providers using it (levels with a request schema only)."""
    out: dict[str, list[str]] = {}
    available = specs.levels()
    for name in list_profiles():
        level = load_profile(name).schema_level
        if level in available:
            out.setdefault(level, []).append(name)
    return dict(sorted(out.items()))


def render_suite(level: str, providers: list[str]) -> str:
    """The YAML text of ``suites/derived/<level>.yaml``."""
    cases = derive_cases(level)
    document = {
        "name": f"derived/{level}",
        "description": (
            f"Derived by `chatprobe derive` from specs/schemas/{level}/request.yaml: every "
            "documented parameter with a valid value, both sides of each bound, enum values and "
            "a wrong type. Invalid requests must get a 4xx in the provider's envelope."
        ),
        # custom providers (profile files, --base-url) of this level run it too
        "schema_level": level,
        "defaults": {"providers": providers},
        "cases": [c.to_yaml() for c in cases],
    }
    header = (
        f"# GENERATED by `chatprobe derive` from specs/schemas/{level}/request.yaml.\n"
        "# Do not edit: change the schema or src/chatprobe/suites/derive.py and re-run\n"
        "# `chatprobe derive`, then record the new cases (`chatprobe check --record`).\n"
    )
    return header + yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )


def write_suites(out_dir: Path, levels: list[str] | None = None) -> list[Path]:
    """Write one derived suite per level; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for level, providers in derive_levels().items():
        if levels and level not in levels:
            continue
        path = out_dir / f"{level}.yaml"
        text = render_suite(level, providers)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
