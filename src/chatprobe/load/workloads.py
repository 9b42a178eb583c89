"""Workloads beyond single requests, as the users send them: conversations and trace lines.

Pure (no gevent). Each turns the plan's ``conversation`` or ``trace`` into
:class:`~chatprobe.load.targets.Choice` objects, the seam of the per-request path, so the
exchange, the sample and the sink are the same for every workload:

* :class:`SessionMaker`: a new :class:`~chatprobe.load.conversation.Conversation` on its
  target (turns stay on one model), named uniquely in the run (``<worker>-<n>``);
  :func:`choice_of` wraps each turn's request.
* :func:`trace_arrivals`: this process's share of the trace, each line due at its (scaled)
  trace time with its prompt built to length (:class:`~chatprobe.load.trace.TracePrompts`),
  ``max_tokens`` its output length, dealt to the targets in turn. Lazily: a line's prompt is
  built when the driver asks for it, before it waits for the line's time.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from chatprobe.load.conversation import Conversation
from chatprobe.load.plan import RunPlan
from chatprobe.load.targets import Choice, PreparedTarget, RequestChooser
from chatprobe.load.trace import TracePrompts, shard
from chatprobe.load.work import WorkItem, encode_body, request_body
from chatprobe.record import requested_max_tokens
from chatprobe.tokens import count_messages, encoding

__all__ = ["SessionMaker", "choice_of", "trace_arrivals", "warm_up"]


def warm_up(plan: RunPlan) -> None:
    """Load the tokenizer before the run when this plan counts or builds prompts as it
    goes (a conversation's history, a trace's prompts), not while the first request is due."""
    if plan.conversation is not None or plan.trace is not None:
        encoding()


def choice_of(target: PreparedTarget, item: WorkItem) -> Choice:
    return Choice(
        target,
        item.body,
        input_tokens=item.input_tokens,
        max_tokens=item.max_tokens,
        session=item.session,
        turn=item.turn,
    )


class SessionMaker:
    """New conversations for one process (``worker_index`` names its sessions)."""

    def __init__(self, plan: RunPlan, chooser: RequestChooser, *, worker_index: int = 0) -> None:
        self.plan = plan
        self.chooser = chooser
        self.worker_index = worker_index
        self.started = 0
        self._rng = random.Random(f"chatprobe-sessions:{plan.seed}:{worker_index}")

    def new(self, user_index: int) -> tuple[PreparedTarget, Conversation]:
        """The next session, on its target: ``mix: together`` keeps a user's sessions on
        one target, otherwise each session moves to the next."""
        plan = self.plan
        spec = plan.conversation
        assert spec is not None
        number = self.started
        self.started += 1
        targets = self.chooser.targets
        offset = 0 if plan.mix == "together" else number
        target = targets[(user_index + offset) % len(targets)]
        session = f"{self.worker_index}-{number + 1}"
        if plan.prompt_order == "random":
            first = self._rng.randrange(len(plan.prompts))
        else:  # each session starts where the previous one's user messages would end
            first = number * spec.turns
        conversation = Conversation(
            spec,
            session,
            model_id=target.plan.model_id,
            prompts=plan.prompts,
            first=first,
            max_tokens=plan.max_tokens,
            extra=plan.request,
            rng=random.Random(f"chatprobe-conversation:{plan.seed}:{session}"),
        )
        return target, conversation


def trace_arrivals(
    plan: RunPlan, targets: list[PreparedTarget], worker_index: int, drivers: int
) -> Iterator[tuple[float, Choice]]:
    """``(offset_s, choice)`` for each trace line of this process, in time order."""
    trace = plan.trace
    assert trace is not None
    prompts = TracePrompts(plan.seed, trace.block_tokens)
    for index, request in shard(trace, worker_index, drivers):
        target = targets[index % len(targets)]
        messages = prompts.messages(request, index)
        body = request_body(target.plan.model_id, messages, request.output_tokens, plan.request)
        choice = Choice(
            target,
            encode_body(body),
            input_tokens=count_messages(messages),
            max_tokens=requested_max_tokens(body),
            session=request.session,
            turn=request.turn,
        )
        yield trace.offset_s(request), choice
