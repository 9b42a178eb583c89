"""Renderers: the same sections as HTML (Jinja2, autoescape on), Markdown, and JSON.

Untrusted text (model output, provider error messages) reaches the page only through
Jinja2's autoescape in HTML and through :func:`md_cell` / :func:`md_text` in Markdown, which
turn ``<``, ``>`` and ``&`` into entities (GitHub renders raw HTML in Markdown) and escape
table pipes. Every output is scrubbed of secrets as the last step before it is written.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import orjson

from chatprobe.metrics import jsonable
from chatprobe.report.model import Report
from chatprobe.report.views import Section, build_sections
from chatprobe.results import write_text_atomic
from chatprobe.scrub import scrub_obj, scrub_text

__all__ = ["md_cell", "md_text", "render_html", "render_json", "render_markdown", "write_report"]

_TEMPLATES = Path(__file__).parent / "templates"


@cache
def _html_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,  # every {{ }} is escaped; the templates never use |safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def md_text(value: Any) -> str:
    """Escape text for Markdown prose: HTML entities, then Markdown punctuation."""
    text = html.escape(str(value), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.splitlines())


def md_cell(value: Any) -> str:
    """Escape a Markdown table cell (as :func:`md_text`; never empty, so the table holds)."""
    return md_text(value) or " "


@cache
def _md_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=False,  # Markdown: values are escaped by the filters below instead
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = md_cell
    env.filters["text"] = md_text
    return env


def _meta_line(report: Report) -> dict[str, str]:
    started = min((r.started_at for r in report.runs if r.started_at), default="?")
    machines = {
        f"{r.machine.get('hostname', '?')} ({r.machine.get('cpus', '?')} CPUs, "
        f"{str(r.machine.get('platform', '?')).split('-')[0]}, "
        f"Python {r.machine.get('python', '?')})"
        for r in report.runs
        if r.machine
    }
    providers = sorted({g.provider for g in report.groups})
    if report.conformance:
        providers = sorted(set(providers) | set(report.conformance.providers))
    return {
        "started": started,
        "machine": "; ".join(sorted(machines)) or "?",
        "providers": ", ".join(providers) or "no providers",
    }


def render_html(report: Report, sections: list[Section] | None = None) -> str:
    sections = sections if sections is not None else build_sections(report)
    template = _html_env().get_template("index.html.j2")
    out = template.render(report=report, sections=sections, meta=_meta_line(report))
    return scrub_text(out)


def render_markdown(report: Report, sections: list[Section] | None = None) -> str:
    sections = sections if sections is not None else build_sections(report)
    template = _md_env().get_template("report.md.j2")
    out = template.render(report=report, sections=sections, meta=_meta_line(report))
    out = re.sub(r"\n{3,}", "\n\n", out)
    return scrub_text(out)


def render_json(report: Report) -> bytes:
    """``report.json``: the whole data model, versioned by ``schema_version``."""
    data = jsonable(report)
    data = {"schema_version": report.schema_version, **data}
    return orjson.dumps(scrub_obj(data), option=orjson.OPT_INDENT_2) + b"\n"


def write_report(report: Report, out_dir: Path | str) -> Path:
    """Write ``index.html``, ``report.md`` and ``report.json`` into ``out_dir``; returns
    the path of ``index.html``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections(report)
    write_text_atomic(out / "report.md", render_markdown(report, sections))
    write_text_atomic(out / "report.json", render_json(report))
    return write_text_atomic(out / "index.html", render_html(report, sections))
