"""Fuzzing with hypothesis: what users write and what providers send.

* User files (suite, scenario, provider profile): each shipped file, mutated by random edits
  (YAML syntax, tags, anchors, odd scalars, NUL, BOM, invalid UTF-8), is loaded; the only
  exceptions allowed are chatprobe's documented ones (:class:`ChatprobeError`: ConfigError,
  UnknownNameError, ...), each one line. Complements the generated-structure fuzzing in
  ``tests/test_suite_loader.py`` by starting from real files, so mutations land deep.
* Provider bytes: streams built from OpenAI-like chunks with wrong types, random bytes and
  random SSE framing, split at random points, go through the one SSE decoder, the request
  record's interpretation and the whole check registry: no exception, no check crash, and a
  sample that serialises.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatprobe.checks import CheckContext, evaluate
from chatprobe.errors import ChatprobeError
from chatprobe.load.scenario import load_scenario
from chatprobe.profiles import load_profile
from chatprobe.record import ErrorClass, RequestRecord, TimedEvent
from chatprobe.sse import SSEDecoder
from chatprobe.suites.loader import load_suite
from chatprobe.suites.model import CaseRun
from tests.reliability_support import ROOT
from tests.results_support import sample_of

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ---------------------------------------------------------------------------- user files

TOKENS = [
    ":", "-", "- ", "[", "]", "{", "}", ",", "\n", "  ", "\t", "'", '"', "#", "|", ">", "?",
    "&a ", "*a", "<<: *a", "!!python/object:os.system ", "!!python/object/apply:os.system [x]",
    "!!set ", "!custom ", "!!binary ", "null", "~", "-1", "0", "1e999", ".nan", "true", "0x1F",
    "2025-01-01", "\x00", "\ufeff", "é", "\u2028", "%YAML 1.1\n---\n", "---\n", "...\n",
    "name: x\n", "cases: []\n", "targets: []\n", "models: {}\n", "expect: {status: 5xx}\n",
]  # fmt: skip
RAW = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"]  # invalid UTF-8 and NUL


@st.composite
def mutated(draw: st.DrawFn, source: bytes) -> bytes:
    """``source`` after 1-4 random edits: delete, insert, replace or duplicate a span."""
    data = bytearray(source)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        span = draw(st.integers(0, 12))
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "raw"]))
        if op == "raw":
            data[at:at] = draw(st.sampled_from(RAW))
            continue
        token = draw(st.sampled_from(TOKENS) | st.text(max_size=6)).encode()
        if op == "delete":
            del data[at : at + span]
        elif op == "insert":
            data[at:at] = token
        elif op == "replace":
            data[at : at + span] = token
        else:
            data[at:at] = data[at : at + span]
    return bytes(data)


_counter = itertools.count()


def _fresh(tmp: Path, name: str, content: bytes) -> Path:
    """A new path each time (profile loading is cached by path); scenarios find their
    prompt files at ``../prompts`` and traces at ``../traces`` as in ``loadtests/``."""
    for data in ("prompts", "traces"):
        if not (tmp / "suites" / data).exists():
            shutil.copytree(ROOT / "loadtests" / data, tmp / "suites" / data)
    folder = tmp / "suites" / f"f{next(_counter)}"
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(content)
    return path


def _only_documented(load: Any, path: Path) -> None:
    try:
        load(path)
    except ChatprobeError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        assert "Traceback" not in message


SUITES = sorted((ROOT / "suites").glob("*.yaml"))
SCENARIOS = sorted((ROOT / "loadtests" / "scenarios").glob("*.yaml"))
PROFILES = sorted((ROOT / "specs" / "providers").glob("*.yaml"))


def test_sources_load_unmutated(tmp_path: Path) -> None:
    assert SUITES and SCENARIOS and PROFILES
    for source in SUITES:
        load_suite(_fresh(tmp_path, source.name, source.read_bytes()))
    for source in SCENARIOS:
        load_scenario(_fresh(tmp_path, source.name, source.read_bytes()))
    for source in PROFILES:
        load_profile(str(_fresh(tmp_path, source.name, source.read_bytes())))


@FUZZ
@given(data=st.data(), index=st.integers(0, len(SUITES) - 1))
def test_mutated_suites_raise_only_documented_errors(
    tmp_path: Path, data: st.DataObject, index: int
) -> None:
    source = SUITES[index]
    content = data.draw(mutated(source.read_bytes()))
    _only_documented(load_suite, _fresh(tmp_path, source.name, content))


@FUZZ
@given(data=st.data(), index=st.integers(0, len(SCENARIOS) - 1))
def test_mutated_scenarios_raise_only_documented_errors(
    tmp_path: Path, data: st.DataObject, index: int
) -> None:
    source = SCENARIOS[index]
    content = data.draw(mutated(source.read_bytes()))
    _only_documented(load_scenario, _fresh(tmp_path, source.name, content))


@FUZZ
@given(data=st.data(), index=st.integers(0, len(PROFILES) - 1))
def test_mutated_profiles_raise_only_documented_errors(
    tmp_path: Path, data: st.DataObject, index: int
) -> None:
    source = PROFILES[index]
    content = data.draw(mutated(source.read_bytes()))
    _only_documented(lambda p: load_profile(str(p)), _fresh(tmp_path, source.name, content))


# ---------------------------------------------------------------------------- provider bytes

KEYS = st.sampled_from(
    [
        "id", "object", "created", "model", "choices", "index", "delta", "message", "content",
        "role", "finish_reason", "usage", "prompt_tokens", "completion_tokens", "total_tokens",
        "tool_calls", "function", "name", "arguments", "type", "error", "code", "message",
        "reasoning", "refusal", "logprobs", "text", "cost", "statusCode", "provider",
    ]
)  # fmt: skip
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)


@st.composite
def chunk_like(draw: st.DrawFn) -> Any:
    """Mostly OpenAI-shaped chunks with wrong types anywhere, sometimes anything at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(JSON)
    delta = draw(st.dictionaries(KEYS, JSON, max_size=4) | JSON)
    choice = {"index": draw(JSON | st.integers(0, 2)), "delta": delta}
    choice["finish_reason"] = draw(st.none() | st.sampled_from(["stop", "length"]) | JSON)
    chunk: dict[str, Any] = {"id": draw(JSON), "choices": draw(st.just([choice]) | JSON)}
    if draw(st.booleans()):
        chunk["usage"] = draw(st.dictionaries(KEYS, JSON, max_size=4) | JSON)
    return chunk


@st.composite
def sse_stream(draw: st.DrawFn) -> bytes:
    """SSE bytes: data events from ``chunk_like``, raw garbage lines, odd fields and EOLs."""
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    out = bytearray(draw(st.sampled_from([b"", b"\xef\xbb\xbf"])))
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        if kind <= 5:
            out += b"data: " + orjson.dumps(draw(chunk_like())) + eol + eol
        elif kind == 6:
            out += draw(st.binary(max_size=40)) + eol
        elif kind == 7:
            out += draw(st.sampled_from([b": keep-alive", b"event: error", b"id: 7", b"retry: x"]))
            out += eol
        elif kind == 8:
            out += b"data: " + draw(st.sampled_from([b"[DONE]", b"{", b"null", b"[1]"])) + eol + eol
        else:
            out += b"data: {}" + eol  # a data line left open
    return bytes(out)


def _decode(blob: bytes, cuts: list[int]) -> list[TimedEvent]:
    decoder = SSEDecoder()
    events: list[TimedEvent] = []
    points = sorted({min(c, len(blob)) for c in cuts})
    start = 0
    for t, end in enumerate([*points, len(blob)]):
        events += [TimedEvent(t, item) for item in decoder.decode(blob[start:end])]
        start = end
    events += [TimedEvent(len(points) + 1, item) for item in decoder.flush()]
    return events


def _judge(record: RequestRecord, stream: bool) -> None:
    record.finish()
    assert record.error_class is not ErrorClass.CLIENT_ERROR
    orjson.dumps(sample_of(record))
    record.summary_line()
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": stream, "max_tokens": 3}
    body.update({"n": 1, "stop": "x", "tool_choice": "required"})
    for name in ("openrouter", "aimlapi"):
        profile = load_profile(name)
        case = CaseRun(
            suite="fuzz", case="c", provider=name, model="m", model_id="m",
            source="fuzz:1", body=body,
        )  # fmt: skip
        evaluation = evaluate(CheckContext.for_case(profile, case), record, case)
        crashed = [p for p in evaluation.problems if "crashed" in p]
        assert crashed == [], crashed
        for finding in evaluation.findings:
            assert "\n" not in finding.path


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blob=sse_stream(),
    cuts=st.lists(st.integers(0, 4000), max_size=6),
    status=st.sampled_from([200, 201, 400, 429, 502]),
    done=st.booleans(),
)
def test_any_stream_is_interpreted_and_judged(
    blob: bytes, cuts: list[int], status: int, done: bool
) -> None:
    if done:
        blob += b"data: [DONE]\n\n"
    events = _decode(blob, cuts)
    assert [e.item for e in events] == [e.item for e in _decode(blob, [])]  # split-invariant
    record = RequestRecord(provider="fuzz", model="m", stream=True, status=status)
    record.response_headers = {"content-type": "text/event-stream"}
    record.events = events
    record.t0_ns, record.t_headers_ns, record.t_end_ns = 0, 1, 10**6
    _judge(record, stream=True)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=chunk_like().map(orjson.dumps) | st.binary(max_size=200),
    status=st.sampled_from([200, 201, 400, 401, 429, 500]),
    content_type=st.sampled_from(["application/json", "text/html", "", "text/event-stream"]),
)
def test_any_plain_body_is_interpreted_and_judged(
    body: bytes, status: int, content_type: str
) -> None:
    record = RequestRecord(provider="fuzz", model="m", stream=False, status=status, body=body)
    record.response_headers = {"content-type": content_type} if content_type else {}
    record.t0_ns, record.t_headers_ns, record.t_end_ns = 0, 1, 10**6
    _judge(record, stream=False)


@pytest.mark.parametrize("depth", [200, 300, 1000])
def test_deeply_nested_payloads(depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    record = RequestRecord(provider="fuzz", model="m", stream=True, status=200)
    record.response_headers = {"content-type": "text/event-stream"}
    blob = b'data: {"error": {"code": ' + deep + b', "message": ' + deep + b"}}\n\n"
    blob += b'data: {"id": "x", "choices": ' + deep + b', "usage": {"x": ' + deep + b"}}\n\n"
    record.events = _decode(blob, [])
    _judge(record, stream=True)
    assert record.error_class is ErrorClass.MIDSTREAM_ERROR
