"""Synthetic but realistic results folders, for the report's tests and benchmarks.

Latencies come from each shipped profile's emulator latency model (lognormal TTFT and ITL),
so families differ the way the seeds say (Gemini 2.0 Flash answers sooner than 1.5 Flash).
Errors are drawn from a few realistic classes, a sweep raises concurrency stage by stage,
and the contract folder holds a matrix with passes, documented deviations, a failure and a
skip. ``hostile=True`` plants HTML and script in model output and error messages, to prove
the renderers escape them.

Nothing here is used by a real run, but every file is written by the real builders, so
names and shapes cannot drift from what runs write: ``meta.json`` by
:func:`~chatprobe.results.write_meta`, ``profiles.json`` by
:func:`~chatprobe.results.write_profiles`, ``plan.json`` by
:meth:`~chatprobe.load.plan.RunPlan.write`, samples by :func:`~chatprobe.results.new_sample`
and the :class:`~chatprobe.results.SampleWriter`, and ``summary.json`` by
:func:`chatprobe.load.summary.build_summary` from those samples.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatprobe.load.plan import RunPlan, TargetPlan
from chatprobe.load.scenario import Stage
from chatprobe.load.summary import build_summary, read_sample_table
from chatprobe.profiles import load_profile
from chatprobe.results import (
    CONTRACT,
    PLAN,
    SAMPLES,
    SUMMARY,
    ProfileSnapshot,
    SampleWriter,
    encode_sample,
    new_run_dir,
    new_run_id,
    new_sample,
    write_json_atomic,
    write_meta,
    write_profiles,
)

__all__ = ["HOSTILE_ERROR", "HOSTILE_OUTPUT", "SyntheticRun", "make_run"]

HOSTILE_OUTPUT = "Sure! <script>alert(1)</script> & <b>bold</b> \"quoted\" 'single'"
HOSTILE_ERROR = '<img src=x onerror="alert(2)"> upstream <i>overloaded</i> & retry'

CHECKS = {
    "status": ("error", "HTTP status is the documented success status"),
    "content_type": ("error", "Content-Type is application/json or text/event-stream"),
    "strict_response_schema": ("error", "Response validates against strict OpenAI schema"),
    "relaxed_response_schema": ("error", "Response validates against the relaxed schema"),
    "object_constants": ("error", "`object` is chat.completion / chat.completion.chunk"),
    "finish_reason_enum": ("error", "finish_reason is in the documented enum"),
    "usage_arithmetic": ("error", "total_tokens = prompt_tokens + completion_tokens"),
    "usage_prompt_tokens_zero": ("warning", "prompt_tokens > 0 for a non-empty prompt"),
    "sse_done_last": ("error", "data: [DONE] is the last event"),
    "single_finish_reason": ("error", "exactly one terminal finish_reason per choice"),
    "strict_error_envelope": ("error", "errors use OpenAI's {error: {message, type, code}}"),
    "retry_after_on_429": ("warning", "Retry-After accompanies 429"),
    "max_tokens_honoured": ("error", "completion_tokens <= max_tokens"),
}

_ERRORS = (  # (class, probability, detail)
    ("rate_limited", 0.010, "HTTP 429: Rate limit exceeded, retry later"),
    ("timeout_first_byte", 0.003, "no response headers within 30 s"),
    ("midstream_error", 0.004, "502: Upstream provider returned an error"),
    ("truncated_stream", 0.002, "stream ended without finish_reason or [DONE]"),
)


@dataclass
class SyntheticRun:
    """The folders one synthetic run wrote."""

    group: str
    load_dir: Path
    contract_dir: Path | None


def _targets(providers: list[str]) -> list[tuple[str, str, Any]]:
    out = []
    for name in providers:
        profile = load_profile(name)
        for model in profile.models.values():
            out.append((name, model.name, model))
    return out


def make_run(
    root: Path | str,
    *,
    n_samples: int = 3000,
    providers: tuple[str, ...] = ("aimlapi", "apilaplas", "openrouter"),
    duration_s: float = 60.0,
    stages: tuple[int, ...] = (1, 4, 16),
    seed: int = 7,
    data_source: str = "emulated",
    hostile: bool = False,
    with_contract: bool = True,
    truncate_tail: bool = False,
    group: str | None = None,
) -> SyntheticRun:
    """Write a load folder (and a contract folder) of one synthetic run under ``root``.

    ``n_samples`` is spread over every provider x model and over ``stages`` (the sweep);
    ``truncate_tail`` cuts the last line in half, like a run killed mid-write.
    """
    rng = random.Random(seed)
    group = group or new_run_id()
    targets = _targets(list(providers))
    contract_dir = None
    if with_contract:
        contract_dir = new_run_dir(root)
        write_meta(
            contract_dir,
            kind="contract",
            data_source=data_source,
            providers=providers,
            models=sorted({t[1] for t in targets}),
            command=["chatprobe", "check", "--offline"],
            group=group,
        )
        write_profiles(contract_dir, [load_profile(p) for p in providers])
        write_json_atomic(contract_dir / CONTRACT, _contract(targets, rng, hostile, data_source))
        _finish(contract_dir)
    load_dir = new_run_dir(root)
    meta = write_meta(
        load_dir,
        kind="load",
        data_source=data_source,
        providers=providers,
        models=sorted({t[1] for t in targets}),
        command=["chatprobe", "load", "--scenario", "sweep", "--duration", str(duration_s)],
        group=group,
    )
    write_profiles(load_dir, [load_profile(p) for p in providers])
    plan = _plan(load_dir, targets, duration_s, stages, data_source)
    plan.write(load_dir / PLAN)
    _write_samples(
        load_dir / SAMPLES,
        targets,
        rng,
        n_samples,
        duration_s,
        stages,
        hostile,
        truncate_tail,
    )
    summary = build_summary(
        plan,
        read_sample_table(load_dir / SAMPLES),
        run_id=meta["run_id"],
        profiles=ProfileSnapshot.read(load_dir),
        end_offset_s=duration_s,
        workers={"expected": 1, "reported": 1, "lost": []},
    )
    write_json_atomic(load_dir / SUMMARY, summary)
    _finish(load_dir)
    return SyntheticRun(group=group, load_dir=load_dir, contract_dir=contract_dir)


def _finish(folder: Path) -> None:
    from chatprobe.results import finish_meta

    finish_meta(folder)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _warmup_s(duration_s: float) -> float:
    return min(2.0, duration_s * 0.05)


def _plan(
    folder: Path,
    targets: list[tuple[str, str, Any]],
    duration_s: float,
    stages: tuple[int, ...],
    data_source: str,
) -> RunPlan:
    """The plan such a run would have had: one stage per concurrency level."""
    stages = stages or (1,)
    per_stage = duration_s / len(stages)
    return RunPlan(
        scenario="sweep",
        out_dir=str(folder),
        data_source=data_source,
        targets=[
            TargetPlan(
                provider=provider,
                model=model,
                model_id=info.id,
                url=f"http://127.0.0.1:1/{provider}/v1/chat/completions",
                data_source=data_source,
            )
            for provider, model, info in targets
        ],
        prompts=[[{"role": "user", "content": "Write one short paragraph about rivers."}]],
        stages=[
            Stage(f"{u} users", per_stage, u, 0.0, _warmup_s(duration_s) if k == 0 else 0.0)
            for k, u in enumerate(stages)
        ],
        shape_kind="sweep",
        slo={"ttft_ms": 500.0, "itl_ms": 50.0},
    )


def _write_samples(
    path: Path,
    targets: list[tuple[str, str, Any]],
    rng: random.Random,
    n_samples: int,
    duration_s: float,
    stages: tuple[int, ...],
    hostile: bool,
    truncate_tail: bool,
) -> None:
    """Write samples in time order, in blocks as a distributed master does."""
    stages = stages or (1,)
    per_stage = duration_s / len(stages)
    # More users, more requests per second, flattening as the provider saturates.
    weights = [u / (1.0 + u / 24.0) for u in stages]
    bounds = [0]
    for w in weights:
        bounds.append(bounds[-1] + round(n_samples * w / sum(weights)))
    bounds[-1] = n_samples
    excerpts: dict[tuple[str, str], int] = {}
    warmup_s = _warmup_s(duration_s)
    buf: list[bytes] = []
    with SampleWriter(path) as writer:
        for i in range(n_samples):
            stage_index = next(k for k in range(len(stages)) if i < bounds[k + 1])
            share = (i - bounds[stage_index]) / max(
                1, bounds[stage_index + 1] - bounds[stage_index]
            )
            t_offset = per_stage * (stage_index + share)
            users = stages[stage_index]
            provider, model, info = targets[i % len(targets)]
            lat = info.latency
            # Queueing grows with concurrency: a mild, realistic slope.
            load_factor = 1.0 + 0.02 * (users - 1)
            drift = 1.0 + 0.1 * math.sin(t_offset / max(duration_s, 1) * 6.0)
            ttft = _lognormal(rng, lat.ttft_ms * load_factor * drift, lat.ttft_sigma)
            itl = _lognormal(rng, lat.itl_ms * load_factor, lat.itl_sigma)
            tokens = max(2, int(rng.gauss(64, 12)))
            error_class = None
            detail = ""
            roll = rng.random()
            acc = 0.0
            for cls, p, text in _ERRORS:
                acc += p * (3.0 if provider == "openrouter" and "free" in model else 1.0)
                if roll < acc:
                    error_class, detail = cls, text
                    break
            if hostile and error_class is not None and rng.random() < 0.5:
                detail = f"HTTP 503: {HOSTILE_ERROR}"
            seen = excerpts.get((provider, model), 0)
            excerpts[(provider, model)] = seen + 1
            # every other target reasons for a third of its tokens (no extra draw: the
            # figures of older fixtures stay as they were)
            thinking = tokens // 3 if (i % len(targets)) % 2 else 0
            sample = new_sample(
                provider=provider,
                model=model,
                request_id=f"req-{i}",
                t_wall=1_744_217_603.0 + t_offset,
                lag_ms=None,  # closed loop: no schedule to lag behind
                ttfb_ms=ttft * 0.6,
                ttft_ms=None if error_class else ttft,
                ttfa_ms=None if error_class else ttft + itl * thinking,
                itl_ms=None if error_class else itl,
                e2e_ms=None if error_class else ttft + itl * (tokens - 1),
                total_ms=(ttft * 0.7 if error_class else ttft + itl * (tokens - 1) + 0.2),
                output_tokens=0 if error_class else tokens,
                token_source="usage",
                prompt_tokens=24,
                reasoning_tokens=None if error_class else thinking,
                cached_tokens=16 if i % 4 == 0 else 0,
                input_tokens=22,
                max_tokens=128,
                chunks=0 if error_class else tokens + 2,
                status=429 if error_class == "rate_limited" else 200,
                error_class=error_class,
                error_detail=detail,
                scenario="sweep",
                users=users,
                stage=f"{users} users",
                worker="local",
                t_offset_s=t_offset,
                warmup=t_offset < warmup_s,
                output_excerpt=(
                    (HOSTILE_OUTPUT if hostile else "The sky is blue.") if seen < 5 else None
                ),
            )
            buf.append(encode_sample(sample))
            if len(buf) >= 4096:
                writer.write_lines(b"".join(buf), len(buf))
                buf = []
        if buf:
            writer.write_lines(b"".join(buf), len(buf))
    if truncate_tail:  # a run killed mid-write: the last line cut in half
        data = path.read_bytes()
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        path.write_bytes(data[: len(data) - 1 - max(5, len(last) // 2)])


def _contract(
    targets: list[tuple[str, str, Any]], rng: random.Random, hostile: bool, data_source: str
) -> dict[str, Any]:
    """A ``contract.json`` shaped as ``chatprobe check`` writes it: one case per check x
    provider x model, with passes, documented deviations (their findings as evidence), a
    failure (apilaplas, ``max_tokens_honoured``), a warning (openrouter, Retry-After) and
    skips."""
    results = []
    matrix: dict[str, dict[str, str]] = {}
    for provider, model, _info in targets:
        profile = load_profile(provider)
        row = matrix.setdefault(provider, {})
        for line, check in enumerate(CHECKS, start=3):
            findings = []
            if check in profile.deviations:
                outcome, status = "deviation", "deviation"
                findings.append(
                    {
                        "check": check,
                        "severity": CHECKS[check][0],
                        "message": f"{check}: as the provider documents",
                        "path": "",
                    }
                )
            elif check == "retry_after_on_429" and provider != "openrouter":
                outcome, status = "skipped", "skip"
            elif check == "max_tokens_honoured" and provider == "apilaplas":
                outcome, status = "failed", "fail"
                message = "completion_tokens 70 > max_tokens 64"
                if hostile:
                    message += f"; output: {HOSTILE_OUTPUT}"
                findings.append(
                    {
                        "check": check,
                        "severity": "error",
                        "message": message,
                        "path": "/usage/completion_tokens",
                    }
                )
            elif check == "retry_after_on_429":
                outcome, status = "passed", "warn"
                findings.append(
                    {
                        "check": check,
                        "severity": "warning",
                        "message": "429 without Retry-After",
                        "path": "",
                    }
                )
            else:
                outcome, status = "passed", "pass"
            cell = "pass" if status == "warn" else status
            if row.get(check) not in ("fail",):
                row[check] = cell
            results.append(
                {
                    "case": check,
                    "suite": "core",
                    "provider": provider,
                    "model": model,
                    "outcome": outcome,
                    "duration_s": round(rng.uniform(0.01, 0.2), 3),
                    "findings": findings,
                    "deviations": (
                        [{"check": check, "reason": profile.deviations[check]}]
                        if outcome == "deviation"
                        else []
                    ),
                    "id": f"{check}[{provider}-{model}]",
                    "checks": {check: status},
                    "source": f"suites/core.yaml:{line}",
                    "output_excerpt": HOSTILE_OUTPUT if hostile else "Hello from the model.",
                }
            )
    return {
        "schema_version": 1,
        "data_source": data_source,
        "checks": {
            k: {"severity": s, "description": d, "source": "DESIGN.md"}
            for k, (s, d) in CHECKS.items()
        },
        "results": results,
        "matrix": matrix,
        "display_names": {provider: provider for provider in matrix},
    }
