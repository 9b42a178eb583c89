"""Recorded timing, replayed (issue 16, item 5): a cassette recorded from the emulator keeps
each body piece's arrival, and ``chatprobe emulate --replay`` serves it with that timing.

Recording and replay run the emulator in a subprocess (no GIL shared with the client). The
timing assertions are orders (a replayed byte cannot come before its recorded offset, the
server counting from when it read the request) and bounds relative to the recorded times;
the 2 ms figure of the issue is measured by ``python -m benchmarks --only B5``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatprobe.cassettes import (
    TIMING_KEY,
    Session,
    chunk_bounds,
    read_interactions,
    recorded_record,
)
from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from chatprobe.profiles import load_profile
from chatprobe.record import RequestRecord

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="compares perf_counter across processes"
)

TTFT_MS, ITL_MS, TOKENS = 200.0, 20.0, 8
PROVIDER, MODEL = "openrouter", "gemini-2.0-flash-001"
PROMPTS = ("Tell me about rivers.", "Tell me about stones.")


def _body(prompt: str, stream: bool = True) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": prompt}], "stream": stream}


@pytest.fixture(scope="module")
def cassettes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two streamed answers recorded from the emulator at TTFT 200 ms / ITL 20 ms."""
    folder = tmp_path_factory.mktemp("cassettes")
    config = EmulatorConfig(
        providers=(PROVIDER,),
        ttft_ms=TTFT_MS,
        itl_ms=ITL_MS,
        sigma=0.0,
        output_tokens=(TOKENS, TOKENS),
    )
    with Emulator.in_subprocess(config) as emu:
        session = Session("all")
        session.rewrite[emu.url()] = load_profile(PROVIDER).base_url  # as `check --record`
        with (
            session.use(folder / "openrouter" / "rivers.yaml", {"recorded_from": "emulator"}),
            # the bare base URL: only the origin differs from the real provider's
            ChatClient(
                load_profile(PROVIDER).with_base_url(emu.base_url()), api_key=DEMO_KEY
            ) as client,
        ):
            for prompt in PROMPTS:
                record = client.chat(_body(prompt), model=MODEL)
                assert record.ok, record.summary_line()
    return folder


@pytest.fixture(scope="module")
def replay(cassettes: Path) -> Iterator[Emulator]:
    with Emulator.in_subprocess(
        EmulatorConfig(providers=(PROVIDER,), replay=(str(cassettes),))
    ) as emu:
        yield emu


def _chat(emu: Emulator, prompt: str, stream: bool = True) -> RequestRecord:
    with ChatClient(emu.profile(PROVIDER), api_key="any key") as client:
        return client.chat(_body(prompt, stream), model=MODEL)


def _content_offsets(record: RequestRecord) -> list[float]:
    return [(t - record.t0_ns) / 1e6 for t in record.content_times_ns]


def test_a_recording_keeps_each_piece_arrival(cassettes: Path) -> None:
    path = cassettes / "openrouter" / "rivers.yaml"
    first, second = read_interactions(path)
    for interaction in (first, second):
        timing = interaction.timing
        assert timing is not None and timing["version"] == 1
        offsets = [offset for offset, _ in timing["chunks"]]
        assert offsets == sorted(offsets) and offsets[0] >= timing["head_ms"]
        assert sum(size for _, size in timing["chunks"]) == len(interaction.body)
        # the recorded record: the emulator's pacing, as the client saw it arrive
        recorded = recorded_record(interaction)
        assert recorded.ok and recorded.output_tokens == TOKENS
        assert recorded.ttft_ms is not None and recorded.itl_ms is not None
        assert recorded.ttft_ms >= TTFT_MS  # nothing arrives before it was sent
        assert recorded.ttft_ms > 5 * recorded.itl_ms  # a long first token, short gaps
    # what vcrpy stores is plain YAML with one extra key; nothing else changed
    document = yaml.safe_load(path.read_text())
    assert set(document["interactions"][0]["response"]) == {
        "status",
        "headers",
        "body",
        TIMING_KEY,
    }


def test_cassettes_with_timing_still_replay_in_contract_runs(cassettes: Path) -> None:
    """vcrpy ignores the extra key: a replayed contract case gets the recorded bytes."""
    (interaction, _) = read_interactions(cassettes / "openrouter" / "rivers.yaml")
    session = Session("none")
    with (
        session.use(cassettes / "openrouter" / "rivers.yaml"),
        ChatClient(load_profile(PROVIDER), api_key="replay") as client,
    ):
        record = client.chat(_body(PROMPTS[0]), model=MODEL)
    assert record.ok, record.summary_line()
    assert record.text
    assert record.text == recorded_record(interaction).text


def test_replay_serves_the_recorded_bytes_with_the_recorded_timing(
    replay: Emulator, cassettes: Path
) -> None:
    (first, second) = read_interactions(cassettes / "openrouter" / "rivers.yaml")
    for prompt, interaction in ((PROMPTS[0], first), (PROMPTS[1], second)):
        record = _chat(replay, prompt)  # the same body: that very recording
        recorded = recorded_record(interaction)
        assert record.ok, record.summary_line()
        assert record.text == recorded.text and len(record.chunks) == len(recorded.chunks)
        assert record.chunks[0]["id"] == recorded.chunks[0]["id"]
        # each content event no earlier than recorded (the replay counts from when it read
        # the request, which is after the client sent it; timers may fire 0.2 ms early)...
        replayed, original = _content_offsets(record), _content_offsets(recorded)
        assert len(replayed) == len(original)
        assert all(r >= o - 0.01 * original[0] for r, o in zip(replayed, original, strict=True))
        # ... and paced, not sent at once (how close the pacing comes is a benchmark figure)
        assert record.ttft_ms is not None and recorded.ttft_ms is not None
        assert record.ttft_ms >= 0.99 * recorded.ttft_ms
        assert record.itl_ms is not None and record.itl_ms > 0
    (truth,) = replay.truth(since=replay.stats()["last_seq"] - 1)
    assert record.server_request_id == truth["request_id"]  # its own id, not the recorded one
    assert truth["provider"] == "replay" and truth["model"] == f"google/{MODEL}"
    assert truth["t_first_content_ns"] is not None and truth["outcome"] == "complete"


def test_other_requests_get_the_same_models_recordings_in_turn(replay: Emulator) -> None:
    texts = [_chat(replay, "A prompt never recorded.").text for _ in range(4)]
    assert texts[0] != texts[1] and texts[:2] == texts[2:]  # two recordings, in turn
    plain = _chat(replay, PROMPTS[0], stream=False)  # nothing plain was recorded
    assert plain.status == 404
    assert "no recorded interaction for model" in plain.error_detail
    assert "(stream) x 2" in plain.error_detail
    stats = replay.stats()["replay"]
    assert stats == {
        "interactions": 2,
        "untimed": 0,
        "speed": 1.0,
        "recorded": [f"google/{MODEL} (stream) x 2"],
    }


def test_replay_speed_scales_the_timing(cassettes: Path) -> None:
    config = EmulatorConfig(providers=(PROVIDER,), replay=(str(cassettes),), replay_speed=2.0)
    (interaction, _) = read_interactions(cassettes / "openrouter" / "rivers.yaml")
    recorded = recorded_record(interaction)
    with Emulator.in_subprocess(config) as emu:
        record = _chat(emu, PROMPTS[0])
    assert record.ok and record.ttft_ms is not None and recorded.ttft_ms is not None
    assert 0.49 * recorded.ttft_ms <= record.ttft_ms < 0.75 * recorded.ttft_ms


def test_an_untimed_cassette_is_served_at_once(cassettes: Path, tmp_path: Path) -> None:
    document = yaml.safe_load((cassettes / "openrouter" / "rivers.yaml").read_text())
    for item in document["interactions"]:
        del item["response"][TIMING_KEY]  # as recorded before chatprobe kept timing
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(document))
    (interaction, _) = read_interactions(tmp_path / "old.yaml")
    assert interaction.timing is None
    with Emulator.in_thread(EmulatorConfig(providers=(PROVIDER,), replay=(str(tmp_path),))) as emu:
        record = _chat(emu, PROMPTS[0])
        assert emu.stats()["replay"]["untimed"] == 2
    assert record.ok and record.ttft_ms is not None
    assert record.ttft_ms < TTFT_MS / 2  # no recorded pacing: the answer comes at once


def test_chunk_bounds_stretch_a_body_whose_length_changed() -> None:
    timing = {"head_ms": 1.0, "chunks": [[2.0, 10], [1.5, 10], [5.0, 20]]}
    assert chunk_bounds(timing, 40) == [(2.0, 10), (2.0, 20), (5.0, 40)]
    # a scrubbed secret made the body 4 bytes longer: the ends stretch, the last is the end
    assert chunk_bounds(timing, 44) == [(2.0, 11), (2.0, 22), (5.0, 44)]
    assert chunk_bounds({"head_ms": 3.0, "chunks": []}, 7) == [(3.0, 7)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replay", "no/such/folder"], "--replay: no such file or folder: no/such/folder"),
        (["--replay", "EMPTY"], "no cassettes (*.yaml) under"),
        (["--replay", "BAD"], "not a cassette"),
        (["--replay", "EMPTY", "--replay-speed", "0"], "--replay-speed: must be a positive"),
    ],
)
def test_bad_replay_arguments_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("interactions: [{request: 1}]\n")
    args = [
        str(tmp_path / "empty") if a == "EMPTY" else str(tmp_path / "bad.yaml") if a == "BAD" else a
        for a in args
    ]
    done = subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "emulate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatprobe: error: ")
    assert message in lines[0]


def test_a_gzip_stream_is_timed_in_decoded_bytes(tmp_path: Path) -> None:
    """A server that compresses anyway: sizes count the body as the cassette stores it."""
    import zlib

    from tests.fake_servers.scripted import ScriptedServer, chunk, content_chunk, sse

    events = [sse(content_chunk(w)) for w in ("one ", "two ", "three")]
    events += [sse(content_chunk("", finish="stop")), sse("[DONE]")]
    gzip = zlib.compressobj(wbits=31)
    pieces = [gzip.compress(e) + gzip.flush(zlib.Z_SYNC_FLUSH) for e in events]
    pieces[-1] += gzip.flush()
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    server = ScriptedServer()
    actions: list[tuple[str, Any]] = [("send", head)]
    for piece in pieces:
        actions += [("sleep", 0.02), ("send", chunk(piece))]
    server.scripts["gz"] = [*actions, ("send", b"0\r\n\r\n"), ("close", None)]
    try:
        profile = load_profile(PROVIDER).with_base_url(server.url("gz"))
        with (
            Session("all").use(tmp_path / "gz.yaml"),
            ChatClient(profile, api_key="k") as client,
        ):
            client.chat(_body("hi"), model=MODEL)
    finally:
        server.close()
    (interaction,) = read_interactions(tmp_path / "gz.yaml")
    assert interaction.body == b"".join(events)  # vcrpy stored it decoded
    assert interaction.timing is not None
    sizes = [size for _, size in interaction.timing["chunks"]]
    assert sum(sizes) == len(interaction.body) and len(sizes) == len(events)
    recorded = recorded_record(interaction)
    assert recorded.text == "one two three"
    assert recorded.itl_ms is not None and recorded.itl_ms > 0  # the pieces came apart
