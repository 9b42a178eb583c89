"""Click options shared by the commands that talk to providers: one vocabulary everywhere.

Each decorator adds one group of options; they compose, so a command takes the groups it
needs and another group (say, transport timeouts) slots in beside them::

    @click.command()
    @provider_options
    @duration_option(default=40.0)
    def run(providers, models, base_url, api_key_env, duration): ...

The vocabulary, the same on ``check``, ``load`` and ``run``:

* ``--provider NAME|FILE``: a shipped profile (``chatprobe providers``) or a profile YAML
  file; repeatable and comma-separated (``--provider a,b --provider c``);
* ``--model ID``: repeatable and comma-separated, like ``--provider``;
* ``--base-url URL --api-key-env VAR --model ID``: any OpenAI-compatible endpoint without a
  profile (turned into a profile file by :mod:`chatprobe.endpoints`), called by its host and
  port (``localhost:8000``) or by ``--name NAME``;
* ``--duration``: a :class:`Duration`: ``10`` (seconds), ``500ms``, ``10s``, ``2m``, ``1h``.

Only click glue lives here; what the values mean is decided in library modules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

__all__ = [
    "Duration",
    "duration_option",
    "format_option",
    "provider_option",
    "provider_options",
    "split_list",
    "transport_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    """``("a,b", " c ")`` -> ``("a", "b", "c")``: repeated and comma-separated values, in the
    order given, duplicates and empty items dropped."""
    items = (item.strip() for value in values for item in value.split(","))
    return tuple(dict.fromkeys(item for item in items if item))


def _split_callback(
    ctx: click.Context, param: click.Parameter, value: Sequence[str] | None
) -> tuple[str, ...]:
    return split_list(value or ())


class Duration(click.ParamType):
    """A length of time in seconds: ``10`` (seconds), ``500ms``, ``10s``, ``2m`` or ``1h``.

    The same rule as a scenario file's durations (:func:`chatprobe.durations.parse_duration`).
    """

    name = "duration"

    def __init__(self, minimum_s: float = 0.0) -> None:
        self.minimum_s = minimum_s

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from chatprobe.durations import parse_duration
        from chatprobe.errors import ConfigError

        try:
            seconds = parse_duration(value)
        except ConfigError as exc:
            self.fail(exc.detail, param, ctx)
        if seconds < self.minimum_s:
            self.fail(f"must be at least {self.minimum_s:g}s, got {value!r}", param, ctx)
        return seconds

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"


_PROVIDER_HELP = (
    "Provider profile name (see `chatprobe providers`) or profile YAML file. Repeatable and "
    "comma-separated. Default: every shipped profile (load: the scenario's)."
)


def provider_option(help: str = _PROVIDER_HELP) -> Callable[[F], F]:
    """Add ``--provider NAME|FILE`` alone (repeatable, comma-separated) as ``providers``;
    for commands without the endpoint options, such as ``emulate``."""
    return click.option(
        "--provider",
        "providers",
        multiple=True,
        callback=_split_callback,
        metavar="NAME|FILE",
        help=help,
    )


def provider_options(func: F) -> F:
    """Add ``--provider``, ``--model``, ``--base-url`` and ``--api-key-env`` to a command.

    The command receives ``providers`` and ``models`` (tuples, commas split), ``base_url``,
    ``api_key_env`` and ``name``; :func:`chatprobe.endpoints.provider_refs` turns them into
    profile names or files.
    """
    options = [
        provider_option(),
        click.option(
            "--model",
            "models",
            multiple=True,
            callback=_split_callback,
            metavar="ID",
            help="Canonical model name or provider model id; repeatable and comma-separated. "
            "With --base-url: the model id(s) the endpoint serves (required).",
        ),
        click.option(
            "--base-url",
            default=None,
            metavar="URL",
            help="Any OpenAI-compatible endpoint (e.g. http://localhost:8000/v1) instead of "
            "profiles: always called live; needs --api-key-env and --model.",
        ),
        click.option(
            "--api-key-env",
            default=None,
            metavar="VAR",
            help="Environment variable holding the key for --base-url (set it to any value "
            "for a server without keys).",
        ),
        click.option(
            "--name",
            default=None,
            metavar="NAME",
            help="What to call the --base-url endpoint in reports, output and file names "
            "(lower case letters, digits, '-', '_'). Default: its host and port "
            "(localhost:8000; files use localhost-8000).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def duration_option(
    *, default: float | None = None, minimum_s: float = 0.0, help: str = "Run length."
) -> Callable[[F], F]:
    """Add ``--duration DURATION`` (seconds as a float, or None when not given)."""
    suffix = " Seconds, or with a unit: 500ms, 10s, 2m, 1h."
    return click.option(
        "--duration",
        type=Duration(minimum_s),
        default=default,
        show_default=f"{default:g}s" if default is not None else False,
        help=help + suffix,
    )


def format_option(func: F) -> F:
    """Add ``--format text|json|github`` as ``output_format`` (what each prints:
    :mod:`chatprobe.output`)."""
    from chatprobe.output import FORMATS

    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help="What stdout carries: text (tables for people; plain, never cut, when not a "
        "terminal), json (one JSON document, nothing else) or github (the text, then GitHub "
        "workflow annotations for failures). Progress always goes to stderr.",
    )(func)


# ---------------------------------------------------------------------------- transport


def _timeout_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from chatprobe.durations import parse_timeout

    parse_timeout(value, what=param.opts[0])  # a ConfigError: one line, exit 2
    return value


_TIMEOUT_HELP = {
    "connect": "TCP connect and TLS handshake",
    "first_byte": "request sent until the response head arrives",
    "idle": "longest gap between body bytes (a stall) before timeout_idle",
    "total": "the whole exchange",
}


def transport_options(func: F) -> F:
    """Add ``--ca-bundle``, ``--insecure`` and the four timeouts to a command; the command
    receives them as one ``transport`` argument (:class:`chatprobe.transport.TransportOptions`).
    """
    from chatprobe.transport import DEFAULT_TIMEOUTS, TIMEOUT_FIELDS, TransportOptions

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(f"{name}_timeout") for name in TIMEOUT_FIELDS}
        kwargs["transport"] = TransportOptions(
            ca_bundle=kwargs.pop("ca_bundle"),
            insecure=kwargs.pop("insecure"),
            timeouts={name: value for name, value in given.items() if value is not None},
        )
        return func(*args, **kwargs)

    options = [
        click.option(
            "--ca-bundle",
            default=None,
            metavar="PATH",
            help="PEM file of CA certificates to trust instead of the system's (a company CA, "
            "a self-signed server). Default: $SSL_CERT_FILE, else $REQUESTS_CA_BUNDLE, else "
            "the system store.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Do not verify TLS certificates at all (never against a provider you pay).",
        ),
    ]
    for name in TIMEOUT_FIELDS:
        default = getattr(DEFAULT_TIMEOUTS, name)
        options.append(
            click.option(
                f"--{name.replace('_', '-')}-timeout",
                f"{name}_timeout",
                default=None,
                metavar="DURATION",
                callback=_timeout_value,
                help=f"Timeout: {_TIMEOUT_HELP[name]}; seconds or 500ms, 2s, 1m; none: no "
                f"limit. [default: {'none' if default is None else f'{default:g}s'}, or the "
                "scenario's]",
            )
        )
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
