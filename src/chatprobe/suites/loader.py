"""Load a suite file: line-aware YAML, the suite JSON Schema, then names and expansion.

Every mistake becomes one :class:`~chatprobe.errors.ConfigError` reading
``file:line: field: message``: bad YAML, a wrong type or unknown key (the schema in
``specs/suite.schema.yaml``), an unknown provider, model, check, schema level or fault kind,
a duplicate case name, an unknown ``{{placeholder}}``, or a bad regex. Provider profiles used
by a suite are checked too: their ``deviations`` and ``disabled_checks`` must name real checks
(reported at the profile's own file and line).

**Custom providers** (profile files given with ``--provider FILE``, or an endpoint given with
``--base-url``, materialised as a file) are passed to :func:`load_suite` as ``custom``. A
suite cannot name them, so they run its *generic* cases: every case that does not pin its own
``providers`` (in a suite with a top-level ``schema_level``, such as the derived suites, only
when the custom profile has that level). Each such case runs with the custom profile's own
expectations (its success status, schema level, envelope; ``defaults`` < the case, no
provider's ``overrides``), on the custom profile's first model, or all of them with
``models: all``; a case whose model list names only other providers' models does not apply.
A custom profile file whose name is a shipped profile's replaces that profile for the suite.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from chatprobe.errors import ConfigError, UnknownNameError
from chatprobe.paths import specs_dir
from chatprobe.profiles import ProviderProfile, list_profiles, load_profile
from chatprobe.specs import raise_schema_error
from chatprobe.suites.model import CaseRun, Expect, Suite
from chatprobe.yamlfile import YamlDoc, load_yaml

__all__ = [
    "check_profile_checks",
    "deep_merge",
    "load_suite",
    "suite_name_for",
    "suite_validator",
]

_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_Where = tuple[str | int, ...]


@cache
def suite_validator() -> jsonschema.Draft202012Validator:
    path = specs_dir() / "suite.schema.yaml"
    schema = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def suite_name_for(path: Path) -> str:
    """``.../suites/derived/aimlapi.yaml`` -> ``derived/aimlapi``; elsewhere the file stem."""
    resolved = path.resolve()
    parts = resolved.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "suites":
            return "/".join((*parts[i + 1 : -1], resolved.stem))
    return resolved.stem


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key (recursively); anything else in ``over`` replaces ``base``."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in over.items():
            out[key] = deep_merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def _check_names() -> list[str]:
    from chatprobe.checks import registered

    return list(registered())


@cache
def check_profile_checks(source: str) -> None:
    """Reject a profile whose ``deviations``/``disabled_checks`` name unknown checks."""
    if not source or not Path(source).is_file():
        return
    doc = load_yaml(source)
    data = doc.data if isinstance(doc.data, dict) else {}
    known = set(_check_names())
    for name in data.get("deviations") or {}:
        if name not in known:
            raise doc.error(_unknown("check", name, known), ("deviations", str(name)))
    for i, name in enumerate(data.get("disabled_checks") or []):
        if name not in known:
            raise doc.error(_unknown("check", name, known), ("disabled_checks", i))


def _unknown(kind: str, name: object, known: Iterable[str]) -> str:
    return str(UnknownNameError(kind, str(name), sorted(known)))


class _Loader:
    def __init__(self, doc: YamlDoc, name: str, custom: Iterable[str] = ()) -> None:
        self.doc = doc
        self.name = name
        self.checks = set(_check_names())
        self.providers = list_profiles()
        from chatprobe.specs import levels

        self.levels = levels()
        # custom provider name -> the profile file it comes from
        self.refs: dict[str, str] = {}
        for ref in custom:
            profile = load_profile(ref)
            check_profile_checks(profile.source)
            self.refs[profile.name] = ref

    def _load(self, provider: str) -> ProviderProfile:
        return load_profile(self.refs.get(provider, provider))

    # ------------------------------------------------------------------ validation
    def err(self, message: str, where: _Where) -> ConfigError:
        return self.doc.error(message, where)

    def profile(self, name: str, where: _Where) -> ProviderProfile:
        if name not in self.providers:
            raise self.err(_unknown("provider", name, self.providers), where)
        profile = self._load(name)
        check_profile_checks(profile.source)
        return profile

    def providers_of(self, value: Any, where: _Where) -> list[str]:
        for i, name in enumerate(value):
            self.profile(name, (*where, i))
        return list(value)

    def models_of(self, value: Any, providers: list[str], where: _Where) -> None:
        if value is None or value == "all":
            return
        if isinstance(value, list):
            for i, model in enumerate(value):
                if not any(model in self._load(p).models for p in providers):
                    served = sorted({m for p in providers for m in self._load(p).models})
                    raise self.err(
                        _unknown(f"model for providers {', '.join(providers)}", model, served),
                        (*where, i),
                    )
            return
        for provider, models in value.items():
            profile = self.profile(str(provider), (*where, str(provider)))
            for i, model in enumerate(models):
                if model not in profile.models:
                    raise self.err(
                        _unknown(f"model for provider {provider!r}", model, profile.models),
                        (*where, str(provider), i),
                    )

    def check_name(self, name: str, where: _Where) -> None:
        if name not in self.checks:
            raise self.err(_unknown("check", name, self.checks), where)

    def request(self, request: Mapping[str, Any] | None, where: _Where) -> None:
        if not request:
            return
        for key in ("body", "raw_body", "headers"):
            if key in request:
                for sub, text in _strings(request[key], (*where, key)):
                    for found in _PLACEHOLDER.findall(text):
                        if found != "model":
                            raise self.err(
                                f"unknown placeholder {{{{{found}}}}} (known: {{{{model}}}})", sub
                            )
        for name in request.get("headers") or {}:
            if str(name).lower() in ("authorization", "api-key", "x-api-key", "cookie"):
                raise self.err(
                    "credentials do not belong in a suite; use api_key: valid|invalid|missing",
                    (*where, "headers", str(name)),
                )
        fault = request.get("fault")
        if fault is not None:
            kinds = [fault] if isinstance(fault, str) else fault
            known = _fault_kinds()
            for i, kind in enumerate(kinds):
                base = kind.split("=", 1)[0].strip()
                if known and base not in known:
                    sub = (*where, "fault") if isinstance(fault, str) else (*where, "fault", i)
                    raise self.err(_unknown("fault kind", base, known), sub)

    def expect(self, expect: Mapping[str, Any] | None, where: _Where) -> None:
        if not expect:
            return
        for name in expect.get("checks") or {}:
            self.check_name(str(name), (*where, "checks", str(name)))
        for i, name in enumerate(expect.get("fails") or []):
            self.check_name(name, (*where, "fails", i))
        level = expect.get("schema_level")
        if level is not None and self.levels and level not in self.levels:
            raise self.err(_unknown("schema level", level, self.levels), (*where, "schema_level"))
        for i, rule in enumerate(expect.get("match") or []):
            if "regex" in rule:
                try:
                    re.compile(rule["regex"])
                except re.error as exc:
                    raise self.err(f"bad regex: {exc}", (*where, "match", i, "regex")) from None
            rng = rule.get("range") or {}
            if "min" in rng and "max" in rng and rng["min"] > rng["max"]:
                raise self.err("range min is larger than max", (*where, "match", i, "range"))

    # ------------------------------------------------------------------ expansion
    def load(self) -> Suite:
        data: dict[str, Any] = self.doc.data
        defaults = data.get("defaults") or {}
        level = data.get("schema_level")
        if level is not None and self.levels and level not in self.levels:
            raise self.err(_unknown("schema level", level, self.levels), ("schema_level",))
        self.suite_level = level
        default_providers = self.providers_of(
            defaults.get("providers", self.providers), ("defaults", "providers")
        )
        self.models_of(defaults.get("models"), default_providers, ("defaults", "models"))
        self.request(defaults.get("request"), ("defaults", "request"))
        self.expect(defaults.get("expect"), ("defaults", "expect"))

        seen: dict[str, int] = {}
        runs: list[CaseRun] = []
        for index, case in enumerate(data["cases"]):
            where: _Where = ("cases", index)
            name = case["name"]
            if name in seen:
                first = self.doc.line_of(("cases", seen[name]))
                raise self.err(
                    f"duplicate case name {name!r} (first at line {first})", (*where, "name")
                )
            seen[name] = index
            runs.extend(self.expand(case, defaults, default_providers, where))
        return Suite(
            name=self.name,
            path=self.doc.path,
            description=str(data.get("description", "")),
            runs=tuple(runs),
            cases=tuple(seen),
        )

    def expand(
        self,
        case: Mapping[str, Any],
        defaults: Mapping[str, Any],
        default_providers: list[str],
        where: _Where,
    ) -> list[CaseRun]:
        providers = default_providers
        if "providers" in case:
            providers = self.providers_of(case["providers"], (*where, "providers"))
        models_where: _Where = (*where, "models") if "models" in case else ("defaults", "models")
        models = case.get("models", defaults.get("models"))
        self.models_of(models, providers, models_where)
        self.request(case.get("request"), (*where, "request"))
        self.expect(case.get("expect"), (*where, "expect"))
        if "raw_body" in (case.get("request") or {}) and "body" in (case.get("request") or {}):
            raise self.err("give body or raw_body, not both", (*where, "request", "raw_body"))
        overrides = case.get("overrides") or {}
        for provider, override in overrides.items():
            owhere: _Where = (*where, "overrides", str(provider))
            self.profile(str(provider), owhere)
            if provider not in providers:
                raise self.err(
                    f"override for provider {provider!r}, which this case does not run against "
                    f"(providers: {', '.join(providers)})",
                    owhere,
                )
            for check_name in override.get("deviations") or {}:
                self.check_name(str(check_name), (*owhere, "deviations", str(check_name)))
            self.request(override.get("request"), (*owhere, "request"))
            self.expect(override.get("expect"), (*owhere, "expect"))

        line = self.doc.line_of(where)
        runs = []
        for provider in providers:
            profile = self._load(provider)
            override = overrides.get(provider) or {}
            request, expect = self.merged(defaults, case, override)
            for model in _models_for(models, provider, profile):
                runs.append(
                    self.run(case, provider, profile, model, request, expect, override, line)
                )
        if not runs:
            raise self.err("no selected provider serves any of these models", models_where)
        for provider in self.refs:
            if provider in self.providers or "providers" in case:
                continue  # a shipped name (handled above), or a case pinned to named providers
            profile = self._load(provider)
            if self.suite_level is not None and profile.schema_level != self.suite_level:
                continue
            request, expect = self.merged(defaults, case, {})
            for model in _custom_models(models, provider, profile):
                runs.append(self.run(case, provider, profile, model, request, expect, {}, line))
        return runs

    @staticmethod
    def merged(
        defaults: Mapping[str, Any], case: Mapping[str, Any], override: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request and expectations: defaults < the case < the provider's override."""
        request = deep_merge(defaults.get("request") or {}, case.get("request") or {})
        if "raw_body" in (case.get("request") or {}):
            request.pop("body", None)
        request = deep_merge(request, override.get("request") or {})
        expect = deep_merge(defaults.get("expect") or {}, case.get("expect") or {})
        return request, deep_merge(expect, override.get("expect") or {})

    def run(
        self,
        case: Mapping[str, Any],
        provider: str,
        profile: ProviderProfile,
        model: str,
        request: dict[str, Any],
        expect: dict[str, Any],
        override: Mapping[str, Any],
        line: int | None,
    ) -> CaseRun:
        model_id = profile.model(model).id
        body = raw = None
        if "raw_body" in request:
            raw = _fill(request["raw_body"], model_id).encode("utf-8")
        else:
            body = _fill(copy.deepcopy(request.get("body") or {}), model_id)
            body.setdefault("model", model_id)
            if "stream" in request:
                body["stream"] = request["stream"]
        fault = request.get("fault") or ()
        return CaseRun(
            suite=self.name,
            case=case["name"],
            provider=provider,
            model=model,
            model_id=model_id,
            source=f"{self.doc.path}:{line}" if line else self.doc.path,
            description=str(case.get("description", "")),
            tags=tuple(case.get("tags") or ()),
            body=body,
            raw_body=raw,
            headers={
                str(k): _fill(str(v), model_id) for k, v in (request.get("headers") or {}).items()
            },
            api_key=request.get("api_key", "valid"),
            fault=(fault,) if isinstance(fault, str) else tuple(fault),
            expect=Expect.from_dict(expect),
            skip=override.get("skip"),
            xfail=override.get("xfail"),
            deviations=dict(override.get("deviations") or {}),
            profile=self.refs.get(provider, ""),
        )


def _models_for(models: Any, provider: str, profile: ProviderProfile) -> list[str]:
    if models is None:
        return [next(iter(profile.models))]
    if models == "all":
        return list(profile.models)
    if isinstance(models, list):
        return [m for m in models if m in profile.models]
    return list(models.get(provider) or [next(iter(profile.models))])


def _custom_models(models: Any, provider: str, profile: ProviderProfile) -> list[str]:
    """A custom provider's models for a case: a list naming none of them does not apply."""
    if isinstance(models, list):
        return [m for m in models if m in profile.models]
    return _models_for(models, provider, profile)


def _strings(value: Any, where: _Where) -> Iterable[tuple[_Where, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*where, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*where, i))


def _fill(value: Any, model_id: str) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(model_id, value)
    if isinstance(value, dict):
        return {k: _fill(v, model_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, model_id) for v in value]
    return value


@cache
def _fault_kinds() -> tuple[str, ...]:
    try:
        from chatprobe.emulator.faults import ALIASES, FAULT_KINDS
    except ImportError:  # the emulator is optional for loading
        return ()
    return (*FAULT_KINDS, *ALIASES)


def load_suite(path: str | Path, *, name: str | None = None, custom: Iterable[str] = ()) -> Suite:
    """Load, validate and expand one suite file (raises ConfigError with file:line: field).

    ``custom``: profile files (or names) of selected providers the suite may not name; they
    run its generic cases (see the module docstring).
    """
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error("a suite must be a mapping with a `cases` list")
    raise_schema_error(doc, suite_validator())
    suite_name = name or doc.data.get("name") or suite_name_for(path)
    return _Loader(doc, suite_name, custom).load()
