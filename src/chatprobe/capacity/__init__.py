"""Capacity under SLO: the highest load each target sustains within its latency targets.

* :mod:`~chatprobe.capacity.slo`: the targets a step is judged against (percentile limits,
  error rate), resolved from flags, the scenario and the project;
* :mod:`~chatprobe.capacity.verdict`: one step's judgement from its exact values, with the
  distribution-free CI of each percentile (:func:`chatprobe.stats.quantile_ci`);
* :mod:`~chatprobe.capacity.health`: whether the client itself was the limit of a step;
* :mod:`~chatprobe.capacity.search`: bracket, then interpolate/bisect, on any step
  function (pure: tested with fake steps, no HTTP);
* :mod:`~chatprobe.capacity.runner`: the step function that drives real load runs through
  :func:`chatprobe.load.launcher.run_load`, and the ``capacity.json`` it writes.

docs/capacity.md describes the method for users.
"""
