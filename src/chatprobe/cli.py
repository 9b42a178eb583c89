"""The ``chatprobe`` command line.

Subcommands live in their own modules and are imported only when used (``locust`` and
``gevent`` must never be imported into a process that does not run load). To add one, put a
``click.Command`` in a module and list it in :data:`COMMANDS`.

Every :class:`~chatprobe.errors.ChatprobeError` ends the program with one line on stderr and
exit status 2; no traceback reaches a user for a mistake they can fix.
"""

from __future__ import annotations

import importlib
import sys

import click

from chatprobe import __version__
from chatprobe.errors import ChatprobeError
from chatprobe.scrub import scrub_text

# name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": (
        "chatprobe.commands.validate",
        "validate",
        "Validate a saved payload against a documented schema.",
    ),
    "providers": (
        "chatprobe.commands.providers",
        "providers",
        "List provider profiles, models and documented deviations.",
    ),
    "report": ("chatprobe.commands.report", "report", "Build the provider comparison report."),
    "run": ("chatprobe.commands.run", "run", "Checks, a short load run and the report."),
    "calibrate": (
        "chatprobe.commands.calibrate",
        "calibrate",
        "Measure this client's own TTFT/ITL error at a load against ground truth.",
    ),
    "load": ("chatprobe.commands.load", "load", "Run a locust load test: TTFT, ITL, throughput."),
    "capacity": (
        "chatprobe.commands.capacity",
        "capacity",
        "Find the highest load each target sustains within its SLO.",
    ),
    "emulate": ("chatprobe.commands.emulate", "emulate", "Serve emulated providers offline."),
    "check": ("chatprobe.commands.check", "check", "Run the contract suites; conformance matrix."),
    "derive": ("chatprobe.commands.derive", "derive", "Derive contract suites from the schemas."),
    "init": ("chatprobe.commands.init", "init", "Scaffold a chatprobe project for an endpoint."),
    "monitor": (
        "chatprobe.commands.monitor",
        "monitor",
        "Probe providers continuously: history, uptime, events, metrics.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatprobe")
def cli() -> None:
    """Conformance and load testing for OpenAI-compatible chat-completion providers.

    With no API keys set, every command runs against the built-in provider emulator,
    offline. Set AIMLAPI_API_KEY, APILAPLAS_API_KEY or OPENROUTER_API_KEY to reach the real
    providers.
    """


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="chatprobe", standalone_mode=False)
    except ChatprobeError as exc:
        click.echo(f"chatprobe: error: {scrub_text(str(exc))}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("chatprobe: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        # One line like every other user error (click's own show() spreads usage over three).
        where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else ""
        hint = f" (see `{where} --help`)" if where else ""
        click.echo(f"chatprobe: error: {scrub_text(exc.format_message())}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
