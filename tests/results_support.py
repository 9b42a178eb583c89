"""Helpers that build results folders with the real builders (never hand-written file names
or sample dicts), so a test folder cannot drift from what runs write."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chatprobe.load.plan import RunPlan, TargetPlan
from chatprobe.load.scenario import Stage
from chatprobe.load.summary import build_summary, read_sample_table
from chatprobe.profiles import ProviderProfile
from chatprobe.record import RequestRecord
from chatprobe.results import (
    PLAN,
    SAMPLES,
    SUMMARY,
    ProfileSnapshot,
    SampleWriter,
    build_sample,
    encode_sample,
    new_run_dir,
    write_json_atomic,
    write_meta,
    write_profiles,
)


def sample_of(record: RequestRecord, **where: Any) -> dict[str, Any]:
    """The sample a load run writes for ``record`` (placement defaults: one local user)."""
    place: dict[str, Any] = {
        "scenario": "test",
        "stage": "1 users",
        "users": 1,
        "worker": "local",
        "t_offset_s": 0.0,
        "warmup": False,
    }
    place.update(where)
    return build_sample(record, **place)


def target(provider: str, model: str) -> TargetPlan:
    return TargetPlan(
        provider=provider,
        model=model,
        model_id=model,
        url=f"http://127.0.0.1:1/{provider}/v1/chat/completions",
        data_source="emulated",
    )


def plan_for(folder: Path, targets: list[TargetPlan], stages: list[Stage], **extra: Any) -> RunPlan:
    return RunPlan(
        scenario="test",
        out_dir=str(folder),
        data_source="emulated",
        targets=targets,
        prompts=[[{"role": "user", "content": "hi"}]],
        stages=stages,
        **extra,
    )


def write_load_folder(
    root: Path,
    plan_of: Any,
    profiles: list[ProviderProfile],
    samples_by_worker: Iterable[list[dict[str, Any]]],
    *,
    end_offset_s: float | None = None,
) -> Path:
    """A complete load results folder: meta, profiles, plan, samples (one block per worker,
    interleaved as a master writes them) and the summary built from them."""
    folder = new_run_dir(root)
    plan: RunPlan = plan_of(folder)
    write_meta(
        folder,
        kind="load",
        data_source=plan.data_source,
        providers=[t.provider for t in plan.targets],
        models=[t.model for t in plan.targets],
        command=["chatprobe", "load", "test"],
    )
    write_profiles(folder, profiles)
    plan.write(folder / PLAN)
    blocks = [list(b) for b in samples_by_worker]
    with SampleWriter(folder / SAMPLES) as writer:
        while any(blocks):  # a master writes whatever each worker ships next
            for block in blocks:
                if block:
                    batch, block[:] = block[:2], block[2:]
                    writer.write_lines(b"".join(map(encode_sample, batch)), len(batch))
    summary = build_summary(
        plan,
        read_sample_table(folder / SAMPLES),
        run_id=folder.name,
        profiles=ProfileSnapshot.read(folder),
        end_offset_s=end_offset_s,
    )
    write_json_atomic(folder / SUMMARY, summary)
    return folder
