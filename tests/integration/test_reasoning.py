"""Reasoning models end to end: the client's record, the sample, the figures and the checks
against the emulator's ground truth (issue 16, item 3).

The emulator runs in a subprocess (no GIL shared with the client) on the same
``perf_counter`` clock (CLOCK_MONOTONIC on Linux), so the client's stamps and the truth's
write times compare directly. Every timing assertion is an order (a byte is read after it
was written; the answer after the thinking) or a bound relative to the thinking's own
duration, never a number of milliseconds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from chatprobe.checks import CheckContext, evaluate
from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from chatprobe.emulator.dialect import REASONING_FORMATS
from chatprobe.emulator.prefix import PrefixCacheSettings
from chatprobe.metrics import RunSpec, compute_run
from chatprobe.profiles import ProviderProfile
from chatprobe.record import RequestRecord
from chatprobe.results import build_sample, table_from_rows
from chatprobe.suites.model import CaseRun

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="compares perf_counter across processes"
)

THINK = 40  # reasoning tokens per request: the thinking lasts THINK x ITL
ITL_MS = 5.0
PROVIDER = "openrouter"
MODEL = "chatprobe-reasoner"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    config = EmulatorConfig(
        providers=(PROVIDER,),
        ttft_ms=10,
        itl_ms=ITL_MS,
        sigma=0.0,
        output_tokens=(6, 6),
        rate_limit_rpm=0,
        prefix_cache=PrefixCacheSettings(),
    )
    with Emulator.in_subprocess(config) as emulator:
        yield emulator


def _ask(
    emu: Emulator, prompt: str, *, dialect: str | None = None, think: int = THINK, **body: Any
) -> tuple[RequestRecord, dict[str, Any]]:
    before = emu.stats()["last_seq"]
    headers = {"X-Chatprobe-Reasoning-Tokens": str(think)}
    if dialect:
        headers["X-Chatprobe-Dialect"] = f"reasoning={dialect}"
    request = {"messages": [{"role": "user", "content": prompt}], "stream": True, **body}
    request.setdefault("stream_options", {"include_usage": True})
    with ChatClient(emu.profile(PROVIDER), api_key=DEMO_KEY) as client:
        record = client.chat(request, model=MODEL, headers=headers)
    (truth,) = emu.truth(since=before)
    return record, truth


def _judge(profile: ProviderProfile, record: RequestRecord, body: dict[str, Any]) -> Any:
    case = CaseRun(
        suite="t",
        case="c",
        provider=PROVIDER,
        model=MODEL,
        model_id=record.model_id,
        source="t.yaml:1",
        body=body,
    )
    return evaluate(CheckContext.for_case(profile, case), record, case)


@pytest.mark.parametrize("dialect", REASONING_FORMATS)
def test_both_first_token_times_follow_the_ground_truth(emu: Emulator, dialect: str) -> None:
    record, truth = _ask(emu, f"Think first ({dialect}), then answer.", dialect=dialect)
    assert record.ok, record.summary_line()
    first_reasoning, first_answer = truth["t_first_reasoning_ns"], truth["t_first_answer_ns"]
    assert first_reasoning is not None and first_answer is not None
    thinking_ns = first_answer - first_reasoning
    # the client reads each byte after the emulator wrote it ...
    assert record.t_first_token_ns is not None and record.t_first_answer_ns is not None
    assert record.t_first_token_ns >= first_reasoning
    assert record.t_first_answer_ns >= first_answer
    # ... and soon after: the delay is small next to the thinking it measures
    if dialect != "encrypted":  # an encrypted blob is written right before the answer
        assert thinking_ns > 0
        assert record.t_first_answer_ns > record.t_first_token_ns  # TTFA > TTFT
        assert record.t_first_token_ns - first_reasoning < thinking_ns / 2
        assert record.t_first_answer_ns - first_answer < thinking_ns / 2
    else:
        assert record.t_first_answer_ns >= record.t_first_token_ns
    # what reaches the sample and the figures
    assert record.reasoning_tokens == truth["reasoning_tokens"] == THINK
    sample = build_sample(
        record, scenario="s", stage="1 users", users=1, worker="local", t_offset_s=0, warmup=False
    )
    assert sample["ttft_ms"] == pytest.approx(record.ttft_ms, abs=1e-3)
    assert sample["ttfa_ms"] == pytest.approx(record.ttfa_ms, abs=1e-3)
    assert sample["ttfa_ms"] >= sample["ttft_ms"]
    assert sample["reasoning_tokens"] == THINK
    assert sample["max_tokens"] is None and sample["input_tokens"] is None


def test_figures_count_reasoning_and_cache_hits_as_the_truth_does(emu: Emulator) -> None:
    prompt = "A long shared question for the cache. " * 40
    rows, truths = [], []
    for k in range(3):  # the same prompt three times: later requests hit the prefix cache
        record, truth = _ask(emu, prompt, dialect="reasoning_content", think=THINK + k)
        assert record.ok, record.summary_line()
        rows.append(
            build_sample(
                record,
                scenario="s",
                stage="1 users",
                users=1,
                worker="local",
                t_offset_s=float(k),
                warmup=False,
            )
        )
        truths.append(truth)
    assert [r["cached_tokens"] for r in rows] == [t["cached_tokens"] for t in truths]
    assert sum(t["cached_tokens"] or 0 for t in truths) > 0
    (group,) = compute_run(table_from_rows(rows), RunSpec()).groups
    assert group.ttfa_ms.n == 3 and group.ttft_ms.n == 3
    assert group.ttfa_ms.min is not None and group.ttft_ms.max is not None
    assert group.ttfa_ms.min > group.ttft_ms.min  # type: ignore[operator]
    assert group.reasoning.reasoned == 3
    assert group.reasoning.tokens_total == sum(t["reasoning_tokens"] for t in truths)
    cached = sum(t["cached_tokens"] for t in truths)
    prompt_tokens = sum(t["prompt_tokens"] for t in truths)
    assert group.cache.hit_rate == pytest.approx(cached / prompt_tokens)


def test_a_limit_used_up_while_thinking_is_a_warning_not_an_empty_message(
    emu: Emulator,
) -> None:
    body = {"messages": [{"role": "user", "content": "Think long."}], "max_tokens": 8}
    record, truth = _ask(emu, "Think long.", max_tokens=8)
    assert truth["t_first_answer_ns"] is None  # the limit ran out before any answer
    assert record.ok and record.t_first_token_ns is not None
    assert record.t_first_answer_ns is None and record.ttfa_ms is None
    assert record.max_tokens == 8
    evaluation = _judge(emu.profile(PROVIDER), record, {**body, "stream": True, "model": MODEL})
    assert evaluation.results["assistant_message"].status == "pass"
    result = evaluation.results["answer_after_reasoning"]
    assert result.status == "warn"
    (finding,) = result.findings
    assert "max_tokens was used up while the model was reasoning" in finding.message


def test_an_answer_after_thinking_passes_and_thinking_alone_does_not() -> None:
    import orjson

    def plain(message: dict[str, Any], finish: str) -> RequestRecord:
        choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        raw = {"id": "x", "object": "chat.completion", "created": 1, "model": "m"}
        record = RequestRecord(
            status=200, t0_ns=0, t_end_ns=5_000_000, body=orjson.dumps({**raw, "choices": [choice]})
        )
        record.response_headers = {"content-type": "application/json"}
        return record.finish()

    from chatprobe.profiles import load_profile

    profile = load_profile("openrouter")
    body = {"messages": [{"role": "user", "content": "Hi"}], "model": "m"}
    answered = plain({"content": "A", "reasoning": "r"}, "stop")
    assert _judge(profile, answered, body).results["answer_after_reasoning"].status == "skip"
    encrypted = {"reasoning_details": [{"type": "reasoning.encrypted", "data": "opaque"}]}
    silent = plain({"content": "", **encrypted}, "stop")
    evaluation = _judge(profile, silent, body)
    assert evaluation.results["assistant_message"].status == "pass"
    (finding,) = evaluation.results["answer_after_reasoning"].findings
    assert "1 encrypted reasoning entries" in finding.message and "no answer" in finding.message
    empty = plain({"content": ""}, "stop")  # no thinking either: still an empty message
    assert _judge(profile, empty, body).results["assistant_message"].status == "fail"
