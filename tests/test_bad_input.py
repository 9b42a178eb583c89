"""Bad input to every command: one line on stderr naming the file, line and field (or the
variable), a non-zero exit status, never a traceback.

Each case writes its files into a fresh folder, runs the real ``chatprobe`` command line in a
subprocess there (no API keys in the environment, results under the temporary folder), and
checks stderr. Per-case data problems inside a contract run (a missing or corrupt cassette)
are reported differently on purpose: that case errors with one line naming the cassette file,
the others still run, and the run exits 1 (see :func:`test_cassette_problem_fails_its_case`).

A ``!!python/object`` tag is tried in every kind of YAML chatprobe reads: scenario, suite,
profile, cassette and documented schema.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import cli_support
from tests.cli_support import ROOT

TARGET = "targets: [{provider: openrouter, model: gemini-2.0-flash-001}]\n"
CASE = "cases:\n  - name: a\n    request: {body: {messages: [{role: user, content: hi}]}}\n"
PWNED = "pwned-by-yaml"  # a file the tag would create if it were ever executed
PY_TAG = f'!!python/object/apply:os.system ["touch {PWNED}"]'
PROFILE = (
    "name: acme\nbase_url: https://acme.example/v1\napi_key_env: ACME_API_KEY\n"
    "models:\n  m1: {id: acme-1}\n"
)


@dataclass(frozen=True)
class Case:
    """One bad input: files to write, the command, what its one stderr line must contain."""

    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]
    files: dict[str, str | bytes | None] = field(default_factory=dict)  # None: a folder
    exit: int = 2
    env: dict[str, str] = field(default_factory=dict)


CASES = [
    # ---- load scenarios
    Case("scenario-yaml-syntax", ("load", "s.yaml"), ("s.yaml:2: invalid YAML",),
         {"s.yaml": "targets: [{provider: openrouter\nshape: {users: 2}\n"}),
    Case("scenario-wrong-type", ("load", "s.yaml"),
         ("s.yaml:2: shape.users: 'many' is not of type 'integer'",),
         {"s.yaml": TARGET + "shape: {users: many}\n"}),
    Case("scenario-negative-users", ("load", "s.yaml"), ("s.yaml:3: shape.users:",),
         {"s.yaml": TARGET + "shape:\n  users: -3\n"}),
    Case("scenario-bad-duration", ("load", "s.yaml"), ("s.yaml:2: duration:", "'soon'"),
         {"s.yaml": TARGET + "duration: soon\n"}),
    Case("scenario-open-loop-rate-zero", ("load", "s.yaml"), ("s.yaml:2: shape.open_loop.rate",),
         {"s.yaml": TARGET + "shape: {open_loop: {rate: 0}}\n"}),
    Case("scenario-two-shapes", ("load", "s.yaml"), ("s.yaml:2: shape:", "exactly one"),
         {"s.yaml": TARGET + "shape: {users: 2, open_loop: {rate: 3}}\n"}),
    Case("scenario-unknown-key", ("load", "s.yaml"),
         ("s.yaml:2: shap: unexpected property 'shap' (allowed:",),
         {"s.yaml": TARGET + "shap: {users: 1}\n"}),
    Case("scenario-duplicate-key", ("load", "s.yaml"), ("s.yaml:3: max_tokens: duplicate key",),
         {"s.yaml": TARGET + "max_tokens: 5\nmax_tokens: 6\n"}),
    Case("scenario-unknown-provider", ("load", "s.yaml"),
         ("s.yaml:1: targets[0].provider: unknown provider 'acme'",),
         {"s.yaml": "targets: [{provider: acme, model: m}]\n"}),
    Case("scenario-unknown-model", ("load", "s.yaml"),
         ("s.yaml:2: targets[0].model: unknown model", "'gpt-9'"),
         {"s.yaml": "targets:\n  - {provider: openrouter, model: gpt-9}\n"}),
    Case("scenario-empty-file", ("load", "s.yaml"), ("s.yaml: a scenario must be a mapping",),
         {"s.yaml": "\n"}),
    Case("scenario-not-utf8", ("load", "s.yaml"), ("s.yaml: not UTF-8 text",),
         {"s.yaml": b"name: \xff\xfe\n"}),
    Case("scenario-is-a-directory", ("load", "d.yaml"), ("d.yaml: is a directory",),
         {"d.yaml": None}),
    Case("scenario-missing-file", ("load", "nothing.yaml"), ("nothing.yaml: file not found",)),
    Case("scenario-python-tag", ("load", "s.yaml"),
         ("s.yaml:1: targets: unsupported YAML tag !!python/object/apply",),
         {"s.yaml": f"targets: {PY_TAG}\n"}),
    Case("load-unknown-provider-option", ("load", "--provider", "acme"),
         ("unknown provider 'acme'", "known: aimlapi, apilaplas, openrouter")),
    Case("load-zero-users", ("load", "--users", "0"), ("--users must be at least 1",)),
    Case("load-users-not-a-number", ("load", "--users", "x"),
         ("'--users'", "not a valid integer")),
    Case("load-live-without-key", ("load", "--no-emulator", "--provider", "openrouter"),
         ("environment variable OPENROUTER_API_KEY is not set",)),
    # ---- provider profiles
    Case("profile-wrong-type", ("emulate", "--provider", "p.yaml"), ("p.yaml:2: base_url:",),
         {"p.yaml": PROFILE.replace("https://acme.example/v1", "5")}),
    Case("profile-missing-field", ("emulate", "--provider", "p.yaml"),
         ("p.yaml:1: api_key_env: missing required property",),
         {"p.yaml": PROFILE.replace("api_key_env: ACME_API_KEY\n", "")}),
    Case("profile-yaml-syntax", ("check", "--provider", "p.yaml"), ("p.yaml:3: invalid YAML",),
         {"p.yaml": "name: acme\nmodels: {m1: {id: x}\napi_key_env: K\n"}),
    Case("profile-python-tag", ("emulate", "--provider", "p.yaml"),
         ("p.yaml:4: models: unsupported YAML tag !!python/object",),
         {"p.yaml": PROFILE.split("models:")[0] + "models: !!python/object:os.system {}\n"}),
    # ---- contract suites
    Case("suite-yaml-syntax", ("check", "--suites", "suites/s.yaml"), ("s.yaml:2: invalid YAML",),
         {"suites/s.yaml": "cases: [\n"}),
    Case("suite-duplicate-case", ("check", "--suites", "suites/s.yaml"),
         ("s.yaml:4: cases[1].name: duplicate case name 'a' (first at line 2)",),
         {"suites/s.yaml": CASE + CASE.removeprefix("cases:\n")}),
    Case("suite-unknown-check", ("check", "--suites", "suites/s.yaml"),
         ("s.yaml:4: cases[0].expect.checks.no_such_check: unknown check 'no_such_check'",),
         {"suites/s.yaml": CASE + "    expect: {checks: {no_such_check: false}}\n"}),
    Case("suite-wrong-type", ("check", "--suites", "suites/s.yaml"),
         ("s.yaml:4: cases[0].expect.status: 'fine' is not one of",),
         {"suites/s.yaml": CASE + "    expect: {status: fine}\n"}),
    Case("suite-unknown-model", ("check", "--suites", "suites/s.yaml"),
         ("s.yaml:4: cases[0].models", "'gpt-9'"),
         {"suites/s.yaml": CASE + "    models: [gpt-9]\n"}),
    Case("suite-python-tag", ("check", "--suites", "suites/s.yaml"),
         ("s.yaml:1: cases: unsupported YAML tag !!python/object/apply",),
         {"suites/s.yaml": f"cases: {PY_TAG}\n"}),
    Case("check-live-without-key", ("check", "--live", "--provider", "aimlapi"),
         ("environment variable AIMLAPI_API_KEY is not set",)),
    Case("check-record-without-key",
         ("check", "--record", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "NOPE_KEY",
          "--model", "m"), ("environment variable NOPE_KEY is not set",)),
    Case("load-base-url-without-key",
         ("load", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "NOPE_KEY", "--model",
          "m"), ("environment variable NOPE_KEY is not set",)),
    Case("check-unknown-model", ("check", "--model", "gpt-9"), ("unknown model 'gpt-9'",)),
    Case("check-bad-record-mode", ("check", "--record-mode", "sometimes"),
         ("'--record-mode'", "'sometimes' is not one of")),
    # ---- results folders and reports
    Case("report-empty-folder", ("report", "results"), ("results: no results found",),
         {"results": None}),
    Case("report-missing-folder", ("report", "nowhere"), ("nowhere: results folder not found",)),
    Case("report-file-not-folder", ("report", "f.txt"), ("f.txt: not a results folder",),
         {"f.txt": "hello"}),
    Case("report-corrupt-meta", ("report", "r/run"),
         ("r/run/meta.json:1: not valid JSON",), {"r/run/meta.json": '{"schema_version": 1,'}),
    Case("report-unreadable-meta", ("report", "r/run"),
         ("r/run/meta.json: cannot read: Is a directory",), {"r/run/meta.json": None}),
    Case("report-unreadable-samples", ("report", "r/run"),
         ("r/run/samples.jsonl: cannot read: Is a directory",),
         {"r/run/meta.json": '{"schema_version": 1, "kind": "load"}', "r/run/samples.jsonl": None}),
    Case("report-empty-run", ("report", "r/run"), ("r/run: results folder holds no samples",),
         {"r/run/meta.json": '{"schema_version": 1, "kind": "load"}'}),
    Case("report-future-schema", ("report", "r/run"),
         ("r/run/meta.json: schema_version: unsupported schema_version 99",),
         {"r/run/meta.json": '{"schema_version": 99}'}),
    Case("report-bad-slo", ("report", "--slo", "ttft=fast"), ("--slo", "METRIC=MS")),
    # ---- validate
    Case("validate-bad-schema-value", ("validate", "--schema", "openai-strict", "x.json"),
         ("--schema", "expected LEVEL:KIND"), {"x.json": "{}"}),
    Case("validate-unknown-level", ("validate", "--schema", "acme:response", "x.json"),
         ("unknown schema level 'acme'",), {"x.json": "{}"}),
    Case("validate-unknown-kind", ("validate", "--schema", "openai-strict:reply", "x.json"),
         ("unknown schema kind 'reply'",), {"x.json": "{}"}),
    Case("validate-directory", ("validate", "--schema", "openai-strict:response", "d"),
         ("'d' is a directory",), {"d": None}),
    Case("validate-not-utf8", ("validate", "--schema", "openai-strict:response", "x.json"),
         ("x.json: not UTF-8 text",), {"x.json": b"\xff\xfe{}"}),
    Case("validate-not-json", ("validate", "--schema", "openai-strict:response", "x.json"),
         ("x.json:1: not JSON",), {"x.json": "{'single': quotes}"}),
    Case("project-profile-python-tag", ("providers", "evil"),
         ("profiles/evil.yaml:1: name: unsupported YAML tag !!python/object/apply",),
         {"root/chatprobe.toml": "", "root/profiles/evil.yaml": f"name: {PY_TAG}\n"},
         env={"CHATPROBE_PROJECT": "root"}),
    Case("project-config-bad-value", ("providers",),
         ("chatprobe.toml:3: timeouts.idle:",),
         {"chatprobe.toml": 'providers = ["aimlapi"]\n[timeouts]\nidle = "soon"\n'}),
    Case("project-config-unknown-key", ("check",),
         ("pyproject.toml:2: suites: unexpected property 'suites'",),
         {"pyproject.toml": '[tool.chatprobe]\nsuites = ["x"]\n'}),
    Case("project-config-bad-toml", ("providers",),
         ("chatprobe.toml:1: invalid TOML",), {"chatprobe.toml": "providers = [\n"}),
    Case("project-unknown-provider", ("check",),
         ("chatprobe.toml: providers: unknown provider 'acme'",),
         {"chatprobe.toml": 'providers = ["acme"]\n'}),
    # ---- emulator and run
    Case("emulate-unknown-fault", ("emulate", "--fault", "meltdown=0.1"),
         ("--fault: unknown fault kind 'meltdown'",)),
    Case("emulate-fault-rate-too-big", ("emulate", "--fault", "429=2"),
         ("--fault: rate must be a number in 0..1",)),
    Case("emulate-port-out-of-range", ("emulate", "--port", "99999"),
         ("'--port'", "99999 is not in the range")),
    Case("emulate-unknown-provider", ("emulate", "--provider", "acme"),
         ("unknown provider 'acme'",)),
    Case("run-unknown-provider", ("run", "--provider", "acme"), ("unknown provider 'acme'",)),
    Case("run-comma-list-unknown-provider", ("run", "--provider", "aimlapi,acme"),
         ("unknown provider 'acme'",)),
    Case("run-old-providers-spelling", ("run", "--providers", "aimlapi"),
         ("No such option '--providers'", "Did you mean '--provider'")),
    Case("run-unknown-model", ("run", "--provider", "aimlapi", "--model", "gpt-9"),
         ("unknown model for provider 'aimlapi' 'gpt-9'",)),
    Case("run-bad-duration", ("run", "--duration", "soon"),
         ("'--duration'", "expected a duration like 500ms, 10s, 2m or 1h, got 'soon'")),
    Case("run-too-short", ("run", "--duration", "500ms"), ("'--duration'", "at least 1s")),
    Case("load-bad-duration", ("load", "--duration", "-3s"), ("'--duration'", "'-3s'")),
    Case("check-comma-list-unknown-provider", ("check", "--provider", "openrouter,acme"),
         ("unknown provider 'acme'",)),
    Case("unknown-command", ("lode",), ("No such command 'lode'",)),
]  # fmt: skip


def run_cli(cwd: Path, *argv: str, env: dict[str, str] | None = None, timeout: float = 60):
    extra = {"CHATPROBE_RESULTS": str(cwd / "results-out")}
    for key, value in (env or {}).items():
        extra[key] = str(cwd / value) if key == "CHATPROBE_PROJECT" else value
    return cli_support.run_cli(*argv, cwd=cwd, env=extra, timeout=timeout)


def _write(base: Path, files: dict[str, str | bytes | None]) -> None:
    for name, content in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def test_the_matrix_has_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(tmp_path: Path, case: Case) -> None:
    _write(tmp_path, case.files)
    done = run_cli(tmp_path, *case.argv, env=case.env)
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == case.exit, done.stderr
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("chatprobe: error: "), line
    for expected in case.expect:
        assert expected in line, line
    assert not (tmp_path / PWNED).exists()


@pytest.mark.parametrize(
    "damage",
    ["missing", "yaml-syntax", "python-tag", "not-utf8", "wrong-shape"],
)
def test_cassette_problem_fails_its_case(tmp_path: Path, damage: str) -> None:
    """Replay with one damaged cassette: that case errors with one line naming the file (and
    the line, for YAML errors), the other case still passes, exit 1, no traceback."""
    cassettes = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes" / "aimlapi" / "basic", cassettes / "aimlapi" / "basic")
    target = cassettes / "aimlapi" / "basic" / "hello--gemini-2.0-flash-exp.yaml"
    content: dict[str, bytes] = {
        "yaml-syntax": b"interactions: [\n",
        "python-tag": f"version: 1\ninteractions: {PY_TAG}\n".encode(),
        "not-utf8": b"\xff\xfe\x00",
        "wrong-shape": b"interactionz: []\n",
    }
    if damage == "missing":
        target.unlink()
    else:
        target.write_bytes(content[damage])
    done = run_cli(
        tmp_path,
        "check",
        "--suites",
        str(ROOT / "suites" / "basic.yaml"),
        "--provider",
        "aimlapi",
        "--model",
        "gemini-2.0-flash-exp",
        "--cassette-dir",
        "cassettes",
        "-k",
        "hello",
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 1, done.stdout + done.stderr
    # pytest's short summary repeats the message in full when CI is set: count it once.
    named = sorted(
        {line for line in done.stdout.splitlines() if "hello--gemini-2.0-flash-exp.yaml" in line}
    )
    assert len(named) == 1, done.stdout
    want = {
        "missing": "no cassette cassettes/aimlapi/basic/hello--gemini-2.0-flash-exp.yaml",
        "yaml-syntax": "hello--gemini-2.0-flash-exp.yaml:2: corrupt cassette",
        "python-tag": "hello--gemini-2.0-flash-exp.yaml:2: corrupt cassette",
        "not-utf8": "cannot read cassette",
        "wrong-shape": "corrupt cassette",
    }[damage]
    assert want in named[0], named[0]
    # the stream case ran (the tally on stdout; pytest's own count on stderr)
    assert "1 case conforms to its provider's documented contract" in done.stdout
    assert "1 passed" in done.stderr or "1 deviation" in done.stderr
    assert not (tmp_path / PWNED).exists()


YAML_READERS = ("yaml.load(", "yaml.load_all(", "yaml.compose(", "yaml.safe_load(")
UNSAFE = ("unsafe_load", "full_load", "FullLoader", "UnsafeLoader", "yaml.Loader", "CLoader")


def test_yaml_is_only_ever_read_safely() -> None:
    """Every YAML read in the code base goes through a safe loader (grep, reviewed here)."""
    sources = [
        p
        for folder in ("src", "loadtests", "benchmarks", "tools", "tests")
        for p in (ROOT / folder).rglob("*.py")
        if p.name != "test_bad_input.py"
    ]
    readers = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for word in UNSAFE:
            assert word not in text.replace("CSafeLoader", ""), f"{path}: {word}"
        for line in text.splitlines():
            if not any(call in line for call in YAML_READERS):
                continue
            readers.append(f"{path.relative_to(ROOT)}: {line.strip()}")
            if "safe_load(" in line:
                continue
            loader = re.search(r"Loader=(\w+)", line)
            assert loader, line  # PyYAML's default for load() is not safe
            assert f'{loader[1]} = getattr(yaml, "CSafeLoader", yaml.SafeLoader)' in text, line
    assert len(readers) >= 3, readers  # the scan found the readers it reviews
