"""How long and how wide each benchmark runs: ``full`` (the figures), ``quick``, ``smoke``.

``full`` is what the README quotes (about 10 minutes); ``quick`` shortens every window and
runs one round (about a minute, indicative figures); ``smoke`` is the smallest run that still
goes through every benchmark end to end, for the test suite (seconds, figures meaningless).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUDGETS", "Budget"]


@dataclass(frozen=True, slots=True)
class Budget:
    name: str
    warmup_s: float
    window_s: float
    b1_reps: int
    b1_clients: tuple[str, ...]
    b2_levels: tuple[int, ...]
    b2_clients: tuple[str, ...]
    b2_open_loop: bool
    b3_reps: int
    b3_connections: tuple[int, ...]
    report_samples: int
    replay: bool  # B4: replay every contract suite (about 10 s: not in a smoke run)
    profile: bool  # B1: one extra, uncounted round of chatprobe's client under py-spy
    b5_streams: int  # B5: streams recorded, then replayed at speed 1 and 2
    tls_clients: tuple[str, ...] = ("chatprobe",)  # B1/B2: also run these over HTTPS
    b2_tls_levels: tuple[int, ...] = (1, 64, 200)  # B2: stream counts of the HTTPS rows
    b2_auto_levels: tuple[int, ...] = (200,)  # B2: `chatprobe load --processes auto` rows


_ALL = ("chatprobe", "locust-httpuser", "httpx-async", "raw-httptools")
_LEVELS = (1, 20, 64, 200)

BUDGETS: dict[str, Budget] = {
    "full": Budget(
        name="full",
        warmup_s=2.0,
        window_s=6.0,
        b1_reps=3,
        b1_clients=_ALL,
        b2_levels=_LEVELS,
        b2_clients=_ALL,
        b2_open_loop=True,
        b3_reps=2,
        b3_connections=(64, 256),
        report_samples=1_000_000,
        replay=True,
        profile=True,
        b5_streams=30,
    ),
    "quick": Budget(
        name="quick",
        warmup_s=1.0,
        window_s=2.5,
        b1_reps=1,
        b1_clients=_ALL,
        b2_levels=_LEVELS,
        b2_clients=_ALL,
        b2_open_loop=True,
        b3_reps=1,
        b3_connections=(64, 256),
        report_samples=100_000,
        replay=True,
        profile=False,
        b5_streams=10,
    ),
    "smoke": Budget(
        name="smoke",
        warmup_s=0.3,
        window_s=0.7,
        b1_reps=1,
        b1_clients=("chatprobe", "locust-httpuser"),
        b2_levels=(4,),
        b2_clients=("chatprobe",),
        b2_open_loop=False,
        b3_reps=1,
        b3_connections=(16,),
        report_samples=2_000,
        replay=False,
        profile=False,
        b5_streams=2,
        b2_tls_levels=(4,),
        b2_auto_levels=(4,),
    ),
}
