"""The models endpoint: ``GET <base>/models`` lists the model under test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from chatprobe.checks.context import CheckContext, as_list
from chatprobe.checks.findings import Problem, Severity
from chatprobe.checks.registry import MODELS, check
from chatprobe.errors import UnknownNameError
from chatprobe.record import RequestRecord

LISTING = "200 with {object: list, data: [{id, object: model, ...}]} naming the model"


def _answered(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return record.status is not None


@check(
    severity=Severity.ERROR,
    source="OpenAI API reference, Models: GET /v1/models ('Lists the currently available "
    "models'; {object: list, data: [Model {id, object, created, owned_by}]}); OpenRouter and "
    "AI/ML API document GET /models too",
    applies=_answered,
    endpoints=(MODELS,),
)
def models_list_model(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """GET /models answers a list that names the model under test.

    Clients discover models there (chat front ends, SDK helpers, gateways' health checks);
    an endpoint without the route (404) cannot say what it serves. The model may be listed
    by the id sent or by the name the provider echoes.
    """
    status = record.status or 0
    if status == 404:
        yield Problem(
            "no GET /models route (404): the endpoint cannot list the models it serves",
            path="/status",
            received=status,
            documented=LISTING,
        )
        return
    if not 200 <= status < 300:
        detail = f": {record.error_detail}" if record.error_detail else ""
        yield Problem(
            f"GET /models failed{detail}", path="/status", received=status, documented=LISTING
        )
        return
    body = record.json
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        yield Problem(
            "GET /models did not answer a list of models",
            path="/body/data" if isinstance(body, dict) else "/body",
            received=data if isinstance(body, dict) else body,
            documented=LISTING,
        )
        return
    ids = [m.get("id") for m in as_list(data) if isinstance(m, dict)]
    wanted = {case.model_id}
    with contextlib.suppress(UnknownNameError):  # unknown to the profile: the id sent counts
        wanted.add(ctx.profile.model(case.model).echo)
    if not wanted & set(ids):
        yield Problem(
            f"GET /models does not list the model under test ({len(ids)} models listed)",
            path="/body/data",
            received=ids[:20],
            documented=sorted(wanted),
        )
