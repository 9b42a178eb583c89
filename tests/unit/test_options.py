"""One vocabulary of options: check, load and run take the same provider, model, endpoint
and duration options, built by the same decorators in :mod:`chatprobe.commands.options`."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from chatprobe.commands.options import Duration, duration_option, provider_options, split_list

PROVIDER_OPTIONS = ("--provider", "--model", "--base-url", "--api-key-env", "--name")


def _command(name: str) -> click.Command:
    from chatprobe.cli import cli

    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    return command


def _option(command: click.Command, flag: str) -> click.Option:
    for param in command.params:
        if isinstance(param, click.Option) and flag in param.opts:
            return param
    raise AssertionError(f"{command.name} has no {flag}")


@pytest.mark.parametrize("flag", PROVIDER_OPTIONS)
def test_check_load_and_run_share_each_provider_option(flag: str) -> None:
    options = [_option(_command(name), flag) for name in ("check", "load", "run")]
    first = options[0]
    for option in options[1:]:
        assert option.opts == first.opts and option.secondary_opts == first.secondary_opts
        assert option.name == first.name and option.multiple == first.multiple
        assert option.help == first.help and option.callback is first.callback


def test_emulate_takes_the_same_provider_list() -> None:
    option = _option(_command("emulate"), "--provider")
    reference = _option(_command("check"), "--provider")
    assert option.name == reference.name and option.callback is reference.callback


def test_every_duration_option_takes_units() -> None:
    for name in ("load", "run"):
        assert isinstance(_option(_command(name), "--duration").type, Duration)


def test_no_command_spells_providers_in_the_plural() -> None:
    for name in ("check", "load", "run"):
        flags = {flag for param in _command(name).params for flag in param.opts}
        assert "--providers" not in flags


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("a,b", "c"), ("a", "b", "c")),
        ((" a , b ,", "b"), ("a", "b")),  # spaces and empty items dropped, duplicates once
        ((), ()),
        (("specs/a,b.yaml",), ("specs/a", "b.yaml")),  # commas always separate
    ],
)
def test_split_list(values: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert split_list(values) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10", 10.0), ("10s", 10.0), ("2m", 120.0), ("500ms", 0.5), ("1h", 3600.0), ("2.5", 2.5)],
)
def test_duration_accepts_seconds_and_units(text: str, seconds: float) -> None:
    assert Duration().convert(text, None, None) == seconds


def _probe() -> click.Command:
    @click.command()
    @provider_options
    @duration_option(default=40.0, minimum_s=1.0)
    def probe(
        providers: tuple[str, ...],
        models: tuple[str, ...],
        base_url: str | None,
        api_key_env: str | None,
        name: str | None,
        duration: float,
    ) -> None:
        click.echo(f"{list(providers)} {list(models)} {base_url} {api_key_env} {name} {duration}")

    return probe


def test_the_decorators_compose_and_split_repeated_comma_lists() -> None:
    result = CliRunner().invoke(
        _probe(),
        ["--provider", "a,b", "--provider", "c", "--model", "m1,m2", "--duration", "2m"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "['a', 'b', 'c'] ['m1', 'm2'] None None None 120.0"
    default = CliRunner().invoke(_probe(), [])
    assert default.output.strip() == "[] [] None None None 40.0"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "expected a duration like 500ms, 10s, 2m or 1h, got 'soon'"),
        ("0.5s", "must be at least 1s"),
        ("-1", "'-1'"),
    ],
)
def test_bad_durations_are_usage_errors(value: str, message: str) -> None:
    result = CliRunner().invoke(_probe(), ["--duration", value])
    assert result.exit_code == 2
    assert "Invalid value for '--duration'" in result.output and message in result.output
