"""YAML loading with line numbers, provider profiles, secret scrubbing and the CLI surface."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import chatprobe
from chatprobe.errors import ConfigError, MissingKeyError, UnknownNameError
from chatprobe.profiles import custom_profile, list_profiles, load_profile
from chatprobe.scrub import REDACTED, register_secret, scrub_headers, scrub_obj, scrub_text
from chatprobe.yamlfile import parse_yaml


def test_public_api() -> None:
    assert {"ChatClient", "RequestRecord", "SSEDecoder", "load_profile"} <= set(chatprobe.__all__)
    for name in chatprobe.__all__:
        assert hasattr(chatprobe, name)


def test_yaml_lines_and_errors() -> None:
    doc = parse_yaml("a:\n  b:\n    - x\n    - y\nc: 1\n", "f.yaml")
    assert doc.line_of(("a", "b", 1)) == 4
    assert doc.line_of(("c",)) == 5
    assert doc.line_of(("c", "missing")) == 5
    with pytest.raises(ConfigError, match=r"f.yaml:3: invalid YAML"):
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n", "f.yaml")
    with pytest.raises(ConfigError, match=r"f.yaml:2: b: duplicate key 'b'"):
        parse_yaml("b: 1\nb: 2\n", "f.yaml")
    with pytest.raises(ConfigError, match=r"f.yaml:1: unsupported YAML value"):
        parse_yaml("a: !!python/object:os.system ls\n", "f.yaml")


def test_shipped_profiles_load() -> None:
    assert {"aimlapi", "apilaplas", "openrouter"} <= set(list_profiles())
    aiml = load_profile("aimlapi")
    assert aiml.api_key_env == "AIMLAPI_API_KEY"
    assert aiml.success_status == (201,)
    assert aiml.model("gemini-2.0-flash-exp").echo == "google/gemini-2.0-flash-exp"
    router = load_profile("openrouter")
    assert router.chat_url == "https://openrouter.ai/api/v1/chat/completions"
    free = router.model("google/gemini-2.0-flash-exp:free")  # lookup by provider id
    assert free.name == "gemini-2.0-flash-exp:free" and free.rate_limit_rpm == 20
    price = router.model("gemini-2.0-flash-001").pricing
    assert price is not None and price.cost(1_000_000, 1_000_000) == pytest.approx(0.5)
    with pytest.raises(UnknownNameError, match=r"gemini-2\.0-flash-001"):
        router.model("gpt-5")
    with pytest.raises(UnknownNameError, match="aimlapi"):
        load_profile("nosuchprovider")


def test_broken_profile_names_file_line_and_field(tmp_path: Path) -> None:
    text = Path(load_profile("aimlapi").source).read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("api_key_env: AIMLAPI_API_KEY", "api_key_env: 42"))
    with pytest.raises(ConfigError) as info:
        load_profile(str(bad))
    message = str(info.value)
    assert str(bad) in message and "api_key_env" in message
    assert info.value.line == text.splitlines().index("api_key_env: AIMLAPI_API_KEY") + 1


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="OPENROUTER_API_KEY"):
        load_profile("openrouter").require_key()


def test_custom_profile_passes_models_through() -> None:
    profile = custom_profile("http://127.0.0.1:9/v1", "MY_KEY")
    assert profile.model("anything").id == "anything"
    assert profile.chat_url == "http://127.0.0.1:9/v1/chat/completions"


def test_scrubbing() -> None:
    register_secret("canary-secret-abcdef")
    text = "key canary-secret-abcdef and sk-or-v1-0123456789abcdef0123 and Bearer abcdefghijkl"
    cleaned = scrub_text(text)
    assert "canary-secret" not in cleaned and "0123456789abcdef" not in cleaned
    assert "abcdefghijkl" not in cleaned and cleaned.count(REDACTED) == 3
    headers = scrub_headers({"Authorization": "Bearer x", "X-Title": "canary-secret-abcdef"})
    assert headers == {"Authorization": REDACTED, "X-Title": REDACTED}
    assert scrub_obj({"a": ["canary-secret-abcdef", 1]}) == {"a": [REDACTED, 1]}


def test_cli_help_and_one_line_errors() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "validate" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "providers", "nosuch"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("chatprobe: error: unknown provider 'nosuch'")
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
