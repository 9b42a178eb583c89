"""chatprobe's own locust user, exactly as ``chatprobe load`` runs it, as a benchmark client.

The run plan is built here (one emulator target, one prompt, one stage, closed loop or open
loop at ``--rate``) and handed to :func:`chatprobe.load.plugin.install`, which returns the
same user classes ``loadtests/locustfile.py`` exposes. Everything on the real path runs:
the streaming read, the SSE decoder, :meth:`RequestRecord.finish`, the sample line written
to ``samples.jsonl``, locust's request event and the timing table. The only addition is a
listener on the per-request path (:attr:`chatprobe.load.request.RequestPath.listeners`)
that copies the record's stamps into the benchmark result (a few list operations, the same
bookkeeping every baseline client does).
"""

from __future__ import annotations

import tempfile
from typing import Any

import orjson
from locust import events

from benchmarks.clients import locust_driver
from benchmarks.clients.protocol import ClientArgs, parse_args, pin

PROVIDER = "openrouter"


def build_plan(args: ClientArgs, out_dir: str) -> Any:
    from chatprobe.load.plan import RunPlan, TargetPlan
    from chatprobe.load.scenario import OpenLoop, Stage
    from chatprobe.transport import TLSConfig

    body = orjson.loads(args.body)
    headers = {
        k: v
        for k, v in args.headers.items()
        if k.lower() not in ("authorization", "content-type", "accept-encoding")
    }
    key = args.headers.get("Authorization", "").removeprefix("Bearer ").strip() or None
    target = TargetPlan(
        provider=PROVIDER,
        model=body["model"].split("/")[-1],
        model_id=body["model"],
        url=args.url,
        data_source="emulated",
        headers=headers,
        demo_key=key,
    )
    total = args.warmup + args.duration + 30
    open_loop = None
    if args.rate:
        open_loop = OpenLoop(
            rate=args.rate, arrival="constant", max_concurrency=max(args.concurrency * 4, 64)
        )
        stage = Stage("open", total, 0, rate=args.rate)
    else:
        stage = Stage("closed", total, args.concurrency)
    return RunPlan(
        scenario="benchmark",
        out_dir=out_dir,
        data_source="emulated",
        targets=[target],
        prompts=[body["messages"]],
        stages=[stage],
        max_tokens=int(body.get("max_tokens", 64)),
        open_loop=open_loop,
        manage_end=False,
        tls=TLSConfig(ca_bundles=(args.ca_file,)) if args.ca_file else TLSConfig(),
        **({} if args.conformance_share is None else {"conformance_share": args.conformance_share}),
    )


def main() -> None:
    args = parse_args()
    pin(args.cpu)
    from chatprobe.load import plugin, process

    with tempfile.TemporaryDirectory(prefix="chatprobe-bench-load-") as out_dir:
        classes = plugin.install(build_plan(args, out_dir))
        user = next(c for name, c in classes.items() if name.endswith("User"))
        run = process.current_run()

        def stamps(record: Any, choice: Any, received: int) -> None:
            times = record.content_times_ns
            locust_driver.record(
                [
                    record.response_headers.get("x-chatprobe-request-id"),
                    record.t_sched_ns,
                    record.t0_ns,
                    record.t_first_token_ns,
                    record.t_last_token_ns,
                    record.t_end_ns,
                    len(times),
                    record.ok,
                    record.ttft_bound_ms,
                    None if record.send_late_ns is None else record.send_late_ns / 1e6,
                ]
            )

        run.path.listeners.append(stamps)
        users = 1 if args.rate else args.concurrency

        def init(env: Any, runner: Any) -> None:
            events.init.fire(environment=env, runner=runner, web_ui=None)

        result = locust_driver.run("chatprobe", user, args, users=users, on_runner=init)
        result.started = run.sink.produced
        judge = run.path.judge  # checks judge in idle time; a saturated client skips them
        if judge.judged + judge.skipped:
            result.checked_pct = 100 * judge.judged / (judge.judged + judge.skipped)
        result.write()


if __name__ == "__main__":
    main()
