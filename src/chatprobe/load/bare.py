"""Plans of bare ``locust -f`` runs: the plan ``chatprobe load`` wrote, or one made here.

``chatprobe load`` writes ``plan.json`` and names it in ``$CHATPROBE_LOAD_PLAN``; a bare
``locust -f loadtests/locustfile.py --host URL`` (or a locustfile of one's own that imports
:class:`chatprobe.load.ChatUser`) has none, so :func:`plan_from_environment` makes one from
the host, the environment and locust's own options, and :func:`write_bare_meta` writes the
``meta.json`` and profile snapshot a parent would have written. Pure (no gevent).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from chatprobe.load.plan import EMULATOR_KEY, PLAN_ENV, RunPlan, TargetPlan, read_plan
from chatprobe.load.scenario import Stage
from chatprobe.transport import TLSConfig

__all__ = ["BARE_SCENARIO", "bare_target", "plan_from_environment", "write_bare_meta"]

BARE_SCENARIO = "locustfile"  # the plan of a bare `locust -f loadtests/locustfile.py` run


def plan_from_environment() -> RunPlan:
    """The plan ``chatprobe load`` wrote, or one for a bare ``locust -f`` run (see docs)."""
    path = os.environ.get(PLAN_ENV)
    if path:
        return read_plan(path)
    return _bare_plan()


def bare_target(host: str | None) -> TargetPlan:
    """The one target of a bare ``locust -f loadtests/locustfile.py --host URL`` run.

    The provider is the ``/<provider>/v1`` path segment of the host when it names a profile
    (the emulator's layout), else ``$CHATPROBE_PROVIDER`` (default openrouter); the model is
    ``$CHATPROBE_MODEL`` or the profile's first model that is not a rate-limited ``:free``
    variant. A loopback host gets the emulator's demo key, any other host the profile's key
    variable; ``$CHATPROBE_API_KEY`` overrides both.
    """
    from chatprobe.profiles import list_profiles, load_profile

    provider = os.environ.get("CHATPROBE_PROVIDER")
    if host and not provider:
        segments = [s for s in urlsplit(host).path.split("/") if s]
        provider = next((s for s in segments if s in list_profiles()), None)
    profile = load_profile(provider or "openrouter")
    model_name = os.environ.get("CHATPROBE_MODEL") or profile.default_model
    info = profile.model(model_name)
    base = (host or profile.base_url).rstrip("/")
    loopback = urlsplit(base).hostname in ("127.0.0.1", "localhost", "::1")
    explicit = os.environ.get("CHATPROBE_API_KEY")
    return TargetPlan(
        provider=profile.name,
        model=info.name,
        model_id=info.id,
        url=base + "/chat/completions",
        data_source="emulated" if loopback else "live",
        headers=dict(profile.headers),
        key_env="CHATPROBE_API_KEY" if explicit else (None if loopback else profile.api_key_env),
        demo_key=None if explicit or not loopback else EMULATOR_KEY,
    )


def _bare_plan() -> RunPlan:
    """A plan for a bare locust run: :func:`bare_target`, one prompt, locust's own end.

    In the web UI the host is typed after start-up: the target is resolved again from
    locust's host when the test starts (:meth:`chatprobe.load.process.LoadRun.on_test_start`).
    """
    from chatprobe.load.prompts import build_prompts
    from chatprobe.load.scenario import PromptSpec

    target = bare_target(_host_from_argv())
    out = os.environ.get("CHATPROBE_OUT")
    if not out:
        from chatprobe.results import new_run_id, results_root

        out = str(results_root() / new_run_id())
    prompt = os.environ.get("CHATPROBE_PROMPT")
    spec = PromptSpec(texts=(prompt,)) if prompt else PromptSpec()
    users = int(_option_from_argv(("-u", "--users")) or 1)
    return RunPlan(
        scenario=BARE_SCENARIO,
        out_dir=out,
        data_source=target.data_source,
        targets=[target],
        prompts=build_prompts(spec, 1),
        stages=[Stage(f"{users} users", 10**9, users)],
        max_tokens=int(os.environ.get("CHATPROBE_MAX_TOKENS") or 64),
        manage_end=False,
        tls=TLSConfig.resolve(),  # $SSL_CERT_FILE / $REQUESTS_CA_BUNDLE, as chatprobe load
    )


def _option_from_argv(names: tuple[str, ...]) -> str | None:
    import sys

    argv = sys.argv
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _host_from_argv() -> str | None:
    return _option_from_argv(("-H", "--host")) or os.environ.get("LOCUST_HOST")


def write_bare_meta(plan: RunPlan) -> None:
    """A bare ``locust -f`` run has no parent to write meta.json (and the profile
    snapshot): write them here."""
    from chatprobe.profiles import load_profile
    from chatprobe.results import write_meta, write_profiles

    out_dir = Path(plan.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_meta(
        out_dir,
        kind="load",
        data_source=plan.data_source,
        providers=[t.provider for t in plan.targets],
        models=[t.model for t in plan.targets],
        notes=[f"bare locust run on {socket.gethostname()}"],
        scenario=plan.scenario,
    )
    write_profiles(out_dir, [load_profile(t.provider) for t in plan.targets])
