"""The transport policy (``chatprobe.transport``): timeouts, TLS settings, the error tables."""

from __future__ import annotations

import errno
import ssl
from pathlib import Path

import httpx
import pytest

from chatprobe.errors import ConfigError
from chatprobe.load.scenario import parse_scenario
from chatprobe.record import ErrorClass as E
from chatprobe.record import RequestRecord
from chatprobe.transport import (
    DEFAULT_TIMEOUTS,
    BodyTooLarge,
    PeerClosed,
    Phase,
    Timeouts,
    TLSConfig,
    TotalTimeout,
    classify,
    httpx_errors,
    request_headers,
)

# ---------------------------------------------------------------------------- timeouts


def test_defaults_fit_hosted_apis() -> None:
    assert Timeouts(connect=10, first_byte=60, idle=30, total=600) == DEFAULT_TIMEOUTS


def test_timeouts_from_durations() -> None:
    t = Timeouts.from_mapping({"connect": "500ms", "first_byte": "2m", "idle": 2, "total": "none"})
    assert t == Timeouts(connect=0.5, first_byte=120, idle=2, total=None)


def test_old_read_key_sets_first_byte_and_idle() -> None:
    assert Timeouts.from_mapping({"read": "5s"}) == Timeouts(first_byte=5, idle=5)
    assert Timeouts.from_mapping({"read": "5s", "idle": "1s"}) == Timeouts(first_byte=5, idle=1)


@pytest.mark.parametrize("value", ["0s", "-1", "soon", True])
def test_bad_timeouts_are_one_clear_error(value: object) -> None:
    with pytest.raises(ConfigError, match=r"timeouts\.idle"):
        Timeouts.from_mapping({"idle": value})


def test_scenario_timeouts_use_the_one_type(tmp_path: Path) -> None:
    text = "targets: [{provider: openrouter, model: gemini-2.0-flash-001}]\n"
    scenario = parse_scenario(text + "timeouts: {first_byte: 5s, idle: 500ms, total: none}\n")
    assert scenario.timeouts == Timeouts(first_byte=5, idle=0.5, total=None)
    assert parse_scenario(text).timeouts == DEFAULT_TIMEOUTS
    with pytest.raises(ConfigError) as info:
        parse_scenario(text + "timeouts:\n  idle: 0s\n", "s.yaml")
    assert str(info.value).startswith("s.yaml:3: timeouts.idle:")


def test_headers_built_once_for_both_transports() -> None:
    headers = request_headers({"X-Title": "t"}, stream=True, api_key="sk-x")
    assert headers["User-Agent"].startswith("chatprobe/") and headers["Accept-Encoding"] == (
        "identity"
    )
    assert headers["Accept"] == "text/event-stream" and headers["Authorization"] == "Bearer sk-x"
    assert "Accept" not in request_headers(stream=False)


# ---------------------------------------------------------------------------- TLS settings


def test_ca_bundles_come_from_the_option_else_the_environment(tmp_path: Path) -> None:
    import certifi

    bundle = str(Path(certifi.where()).resolve())
    company = tmp_path / "company.pem"
    company.write_text(Path(bundle).read_text())
    env = {"SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": str(company)}
    both = TLSConfig.resolve(environ=env)  # every variable that is set is trusted
    assert both.ca_bundles == (bundle, str(company))
    assert both.source == "SSL_CERT_FILE, REQUESTS_CA_BUNDLE"
    given = TLSConfig.resolve(company, environ=env)  # the option replaces them
    assert given.source == "--ca-bundle" and given.ca_bundles == (str(company),)
    assert TLSConfig.resolve(environ={}) == TLSConfig()
    assert TLSConfig.resolve(insecure=True, environ=env).insecure
    assert TLSConfig.resolve(insecure=True).context().verify_mode == ssl.CERT_NONE
    assert both.context().get_ca_certs()  # a context that trusts what was named


def test_unusable_ca_bundle_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"--ca-bundle: cannot use .*junk.pem as a CA bundle"):
        TLSConfig.resolve(junk)
    with pytest.raises(ConfigError, match="SSL_CERT_FILE: cannot use"):
        TLSConfig.resolve(environ={"SSL_CERT_FILE": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError, match="exclude each other"):
        TLSConfig.resolve(junk, insecure=True)


# ---------------------------------------------------------------------------- error tables


def _wrapped(outer: type[Exception], inner: BaseException) -> Exception:
    try:
        raise outer("wrapped") from inner
    except Exception as exc:
        return exc


def _verify_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate in certificate chain"
    return exc


@pytest.mark.parametrize(
    ("exc", "phase", "stream", "expected"),
    [
        (_wrapped(httpx.ConnectError, _verify_error()), Phase.CONNECT, False, E.TLS_ERROR),
        (
            _wrapped(httpx.ConnectError, ConnectionRefusedError()),
            Phase.CONNECT,
            False,
            E.CONNECT_ERROR,
        ),
        (_wrapped(httpx.ConnectTimeout, TimeoutError()), Phase.CONNECT, False, E.TIMEOUT_CONNECT),
        (_wrapped(httpx.ReadTimeout, TimeoutError()), Phase.HEADERS, False, E.TIMEOUT_FIRST_BYTE),
        (_wrapped(httpx.ReadTimeout, TimeoutError()), Phase.BODY, False, E.TIMEOUT_IDLE),
        (httpx.PoolTimeout("pool"), Phase.CONNECT, False, E.TIMEOUT_CONNECT),
        (_wrapped(httpx.ReadError, ConnectionResetError()), Phase.BODY, True, E.CONNECTION_RESET),
        (httpx.RemoteProtocolError("illegal chunk"), Phase.BODY, True, E.PROTOCOL_ERROR),
        (PeerClosed("cut"), Phase.BODY, True, E.TRUNCATED_STREAM),
        (PeerClosed("cut"), Phase.BODY, False, E.TRUNCATED_BODY),
        (PeerClosed("gone"), Phase.HEADERS, False, E.CONNECTION_RESET),
        (TotalTimeout(), Phase.BODY, True, E.TIMEOUT_TOTAL),
        (BodyTooLarge("big"), Phase.BODY, False, E.PROTOCOL_ERROR),
        (OSError(errno.EHOSTUNREACH, "no route"), Phase.CONNECT, False, E.CONNECT_ERROR),
        (ssl.SSLError(1, "bad record mac"), Phase.BODY, True, E.PROTOCOL_ERROR),
        (ssl.SSLError(1, "handshake failure"), Phase.CONNECT, False, E.TLS_ERROR),
        (ValueError("a bug"), Phase.BODY, False, E.CLIENT_ERROR),
    ],
)
def test_exceptions_map_by_type_and_phase(
    exc: BaseException, phase: Phase, stream: bool, expected: E
) -> None:
    cls, detail = classify(exc, phase, httpx_errors(), stream=stream)
    assert cls is expected and detail


def test_a_message_never_decides_the_class() -> None:
    """The same words in a different exception type do not change the class."""
    words = "peer closed connection without sending complete message body: incomplete"
    assert classify(httpx.RemoteProtocolError(words), Phase.BODY, httpx_errors())[0] is (
        E.PROTOCOL_ERROR
    )


def test_tls_error_detail_names_the_fix() -> None:
    cls, detail = classify(
        _wrapped(httpx.ConnectError, _verify_error()), Phase.CONNECT, httpx_errors()
    )
    assert cls is E.TLS_ERROR
    assert "self-signed certificate" in detail and "--ca-bundle" in detail


def test_timeout_detail_names_the_limit() -> None:
    t = Timeouts(idle=2)
    cls, detail = classify(
        _wrapped(httpx.ReadTimeout, TimeoutError()), Phase.BODY, httpx_errors(), timeouts=t
    )
    assert cls is E.TIMEOUT_IDLE and "idle timeout (2s" in detail and "--idle-timeout" in detail


# ---------------------------------------------------------------------------- invariants


def test_a_record_with_impossible_stamps_reports_no_timing() -> None:
    record = RequestRecord(stream=False, status=200, t0_ns=1000, t_headers_ns=5000)
    record.response_headers = {"content-type": "application/json"}
    record.body = (
        b'{"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}]}'
    )
    record.t_end_ns = 4000  # before the head: a transport mixed clocks
    record.finish()
    assert not record.timing_valid
    assert record.ttfb_ms is None and record.ttft_ms is None and record.e2e_ms is None
    assert record.total_ms is None and record.itl_ms is None and record.chunk_gaps_ms == []
    assert any(a.startswith("impossible timing") for a in record.anomalies)
    from chatprobe.results.samples import build_sample

    sample = build_sample(
        record, scenario="s", stage="1", users=1, worker="local", t_offset_s=0.0, warmup=False
    )
    assert sample["ttft_ms"] is None and sample["anomalies"]


def test_a_consistent_record_keeps_its_timing() -> None:
    record = RequestRecord(stream=False, status=200, t0_ns=1000, t_headers_ns=5000)
    record.response_headers = {"content-type": "application/json"}
    record.body = (
        b'{"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}]}'
    )
    record.t_end_ns = 9000
    record.finish()
    assert record.timing_valid and record.ttfb_ms == 0.004 and record.ttft_ms == 0.008


def test_the_pytest_plugin_knows_the_same_timeouts() -> None:
    from chatprobe.pytest_plugin.state import TIMEOUTS
    from chatprobe.transport import TIMEOUT_FIELDS

    assert TIMEOUTS == TIMEOUT_FIELDS  # the plugin does not import the transport early
