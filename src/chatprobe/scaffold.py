"""The files ``chatprobe init`` writes: a project for one OpenAI-compatible endpoint.

::

    chatprobe.toml                        the project (providers, paths)
    profiles/<name>.yaml                  the endpoint's profile, to edit (success status,
                                          documented deviations), with comments saying how
    suites/starter.yaml                   a starter suite (runs beside the built-in suites)
    scenarios/smoke.yaml                  a starter load scenario (the default of `chatprobe
                                          load`, replacing the built-in smoke scenario)
    .gitignore                            results/ and reports/ stay out of git
    .github/workflows/chatprobe.yml       CI: the checks replayed from cassettes/, offline,
                                          the report's summary on the job page

Every file is checked as chatprobe will read it (the profile, suite and scenario against
their schemas) before anything is written, and an existing file is never replaced unless
``force`` is given. The profile document comes from :func:`chatprobe.endpoints.endpoint_document`,
the one builder of an endpoint's profile, so ``--base-url`` runs and ``init`` agree.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from chatprobe import __version__
from chatprobe.errors import ChatprobeError

__all__ = ["Scaffold", "plan_project", "write_project"]

SUITE = "suites/starter.yaml"
SCENARIO = "scenarios/smoke.yaml"
WORKFLOW = ".github/workflows/chatprobe.yml"


@dataclass(frozen=True, slots=True)
class Scaffold:
    """What :func:`plan_project` will write: relative path -> text, and the profile's name."""

    name: str
    files: dict[str, str]


def _q(value: str) -> str:
    """A YAML scalar, quoted only when it has to be."""
    return yaml.safe_dump(value, default_style=None, width=1000).removesuffix("\n...\n").strip()


def plan_project(
    base_url: str, api_key_env: str, models: Sequence[str], *, name: str | None = None
) -> Scaffold:
    """The files of a project for the endpoint (nothing written); mistakes in the arguments
    raise :class:`ChatprobeError` with one line."""
    from chatprobe.endpoints import check_endpoint_args, endpoint_document

    check_endpoint_args(base_url, api_key_env, models)
    document = endpoint_document(base_url, api_key_env, models, name=name)
    name = str(document["name"])
    first = str(next(iter(document["models"])))
    files = {
        "chatprobe.toml": _config(name),
        f"profiles/{name}.yaml": _profile(document),
        SUITE: _suite(name),
        SCENARIO: _scenario(name, first),
        ".gitignore": "# chatprobe: results and reports are outputs; cassettes are committed\n"
        "/results/\n/reports/\n",
        WORKFLOW: _workflow(),
    }
    _validate(files, name)
    return Scaffold(name, files)


def write_project(folder: Path, scaffold: Scaffold, *, force: bool = False) -> list[Path]:
    """Write ``scaffold`` under ``folder``; refuses (one line, nothing written) when a file
    exists and ``force`` is not given. Returns the paths written."""
    targets = {folder / rel: text for rel, text in scaffold.files.items()}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing)
        raise ChatprobeError(f"{shown} already exist(s); nothing written (--force overwrites)")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return list(targets)


def _validate(files: dict[str, str], name: str) -> None:
    """Check every written file the way chatprobe reads it (a broken template is a bug)."""
    import tomllib

    from chatprobe.load.scenario import parse_scenario
    from chatprobe.specs import profile_validator, raise_schema_error
    from chatprobe.suites.loader import suite_validator
    from chatprobe.yamlfile import parse_yaml

    tomllib.loads(files["chatprobe.toml"])
    raise_schema_error(parse_yaml(files[f"profiles/{name}.yaml"]), profile_validator())
    raise_schema_error(parse_yaml(files[SUITE], SUITE), suite_validator())
    yaml.safe_load(files[WORKFLOW])
    scenario = yaml.safe_load(files[SCENARIO])
    scenario["targets"] = [{"provider": "openrouter", "model": "gemini-2.0-flash-001"}]
    parse_scenario(yaml.safe_dump(scenario), SCENARIO)  # its own provider is not known yet


def _config(name: str) -> str:
    return f"""\
# A chatprobe project (docs/projects.md lists every key). chatprobe finds it from any folder
# below this one. `chatprobe check` runs suites/ and chatprobe's built-in suites against the
# providers below; profiles/, suites/ and scenarios/ add to the built-in ones and replace
# those of the same name.
providers = [{_toml(name)}]
# models = ["..."]          # default: each case's own (a profile's first model)
# builtin_suites = true     # false: only this project's suites

[paths]
profiles = ["profiles"]
suites = ["suites"]
scenarios = ["scenarios"]
cassettes = "cassettes"     # recordings: commit them, CI replays them offline
results = "results"
reports = "reports"

# [timeouts]                # the contract checks' client timeouts
# connect = "10s"
# first_byte = "60s"
# total = "10m"

# [slo]                     # for scenarios that set no slo of their own
# ttft_ms = 1000
# e2e_ms = 10000

# [thresholds]
# max_error_rate = 0.05     # a load run with more failed requests exits 1
"""


def _toml(text: str) -> str:
    import json

    return json.dumps(text)  # a TOML basic string is a JSON string for these characters


def _profile(document: dict[str, object]) -> str:
    models = document["models"]
    assert isinstance(models, dict)
    model_lines = "\n".join(
        f"  {_q(str(model))}:\n"
        f'    id: {_q(str(info["id"]))}    # sent as the request\'s "model"\n'
        "    # echo: the model name the endpoint returns, when it differs from id\n"
        '    # pricing: {input_per_mtok: 0.10, output_per_mtok: 0.40, source: "where from"}'
        for model, info in models.items()
    )
    name = str(document["name"])
    return f"""\
# The profile of {document["base_url"]}, written by `chatprobe init`.
# chatprobe judges every answer against what this file says the endpoint documents: edit it
# to match your documentation. The format: specs/profile.schema.yaml in chatprobe;
# `chatprobe providers {name}` shows how it reads.
name: {_q(name)}    # the id: file names, node ids, --provider {name}
display_name: {_q(str(document["display_name"]))}    # what reports and the terminal call it
title: {_q(str(document["title"]))}
base_url: {_q(str(document["base_url"]))}    # requests go to <base_url>/chat/completions
api_key_env: {document["api_key_env"]}    # the variable holding the key (never written anywhere)
# A real endpoint: recording and live runs call it (the variable must be set); chatprobe's
# emulator never stands in for it.
custom_endpoint: true
# The documented schemas answers are validated against: openai-strict, or the level of a
# documented provider this endpoint follows (aimlapi, apilaplas, openrouter).
schema_level: openai-strict
conventions:
  # The status of a successful completion: OpenAI answers 200; some gateways document 201.
  success_status: [200]
  # Error bodies: openai ({{"error": {{"message", "type", "code"}}}}), openrouter or aimlapi.
  error_envelope: openai
  # When a stream carries usage: include_usage (asked with stream_options), always, never.
  stream_usage: include_usage
  # id_pattern: '^chatcmpl-'   # a regex every response id must match
models:
{model_lines}
# Documented deviations from OpenAI, by check name (`chatprobe check --list-checks`): a check
# that fails for a documented reason is reported as a deviation, not a failure. For example:
#   status_openai: "Answers 201 Created, as documented at https://example.com/docs/api."
deviations: {{}}
# disabled_checks: [model_echo]   # checks that do not apply at all
"""


def _suite(name: str) -> str:
    return f"""\
# A starter suite: every case runs against each selected provider (chatprobe.toml's
# providers, here {name}) and is judged by chatprobe's named checks plus its own `expect`.
# The format: docs/suites.md in chatprobe. Record once, replay in CI:
#   chatprobe check --record-mode once     (needs the key; writes cassettes/)
#   chatprobe check                        (offline, from cassettes/)
description: Starter cases; add your own below.
defaults:
  request:
    body: {{max_tokens: 32}}
cases:
  - name: hello
    description: One user message.
    request:
      body:
        messages: [{{role: user, content: Say hello in five words.}}]
  - name: hello-stream
    description: The same, streamed, with usage in the last chunk.
    request:
      stream: true
      body:
        messages: [{{role: user, content: Say hello in five words.}}]
        stream_options: {{include_usage: true}}
  - name: one-token
    description: max_tokens 1 stops after one token with finish_reason length.
    request:
      body:
        messages: [{{role: user, content: Count from one to ten.}}]
        max_tokens: 1
    expect:
      match:
        - {{path: choices.0.finish_reason, equals: length}}
        - {{path: usage.completion_tokens, range: {{max: 1}}}}
"""


def _scenario(name: str, model: str) -> str:
    return f"""\
# A starter load run against {name}: `chatprobe load` runs it (it replaces chatprobe's
# built-in smoke scenario in this project). The format: docs/load.md in chatprobe.
name: smoke
description: A short closed-loop run against {name}.
targets:
  - {{provider: {_q(name)}, model: {_q(model)}}}
prompts:
  text:
    - Explain in two sentences why rivers meander.
    - List three uses of copper and say why each one works.
max_tokens: 64
shape: {{users: 4, ramp: 2s}}
duration: 30s
warmup: 2s
slo: {{ttft_ms: 1000, itl_ms: 100, e2e_ms: 10000}}
"""


def _workflow() -> str:
    return f"""\
# chatprobe in CI: the contract checks replayed from the committed cassettes (offline, no
# key needed), the report's summary on the job page, junit.xml and the report as artifacts.
# Re-record locally with `chatprobe check --record-mode all` when the endpoint changes.
name: chatprobe

on:
  pull_request:
  push:
    branches: [main]
  workflow_dispatch:

permissions:
  contents: read

jobs:
  contract:
    runs-on: ubuntu-latest
    timeout-minutes: 20
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install chatprobe
        run: python -m pip install "chatprobe=={__version__}"
      - name: Contract checks (replayed from cassettes/)
        id: check
        continue-on-error: true  # publish the report first, fail the job below
        run: chatprobe check --out results
      - name: Report
        if: always()
        run: |
          chatprobe report results --out report
          cat report/report.md >> "$GITHUB_STEP_SUMMARY"
      - name: Upload the report and junit.xml
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: chatprobe
          path: |
            report/
            results/*/junit.xml
      - name: Fail when a contract check failed
        if: steps.check.outcome == 'failure'
        run: exit 1
"""
