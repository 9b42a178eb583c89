"""The shipped locustfile's entry point: :func:`install` returns the classes it exposes.

``loadtests/locustfile.py`` (run by ``chatprobe load``, or bare with ``locust -f``) is::

    from chatprobe.load.plugin import install
    globals().update(install())

:func:`install` makes the plan (the one given, else ``$CHATPROBE_LOAD_PLAN``'s, else a bare
run's) this process's run (:mod:`chatprobe.load.process`), and returns the user class for
it, closed loop (:class:`~chatprobe.load.users.PlanChatUser`) or open loop
(:class:`~chatprobe.load.users.PlanOpenLoopUser`), and, when chatprobe manages the run's
end, the plan's shape (:class:`~chatprobe.load.process.PlanShape`). Every class is defined
in its module; nothing is built at run time. A locustfile of one's own subclasses
:class:`chatprobe.load.ChatUser` instead (docs/load.md).

Locust child only (gevent).
"""

from __future__ import annotations

from chatprobe.load.plan import RunPlan
from chatprobe.load.process import LoadRun, PlanShape, current_run, use_plan
from chatprobe.load.users import PlanChatUser, PlanOpenLoopUser

__all__ = ["install"]


def install(plan: RunPlan | None = None) -> dict[str, type]:
    """Make ``plan`` (default: the environment's) this process's run; the classes a
    locustfile must expose, by name."""
    run: LoadRun = use_plan(plan) if plan is not None else current_run()
    classes: dict[str, type] = {}
    if run.plan.open_loop is not None:
        classes["PlanOpenLoopUser"] = PlanOpenLoopUser
    else:
        classes["PlanChatUser"] = PlanChatUser
    if run.plan.manage_end:
        classes["PlanShape"] = PlanShape
    return classes
