"""Benchmarks of chatprobe itself: client cost per stream, timing fidelity, emulator capacity
and offline command cost. Run with ``python -m benchmarks`` (see ``benchmarks/README.md``).

Every figure is a ratio or a difference against something measured in the same invocation,
because the machine these run on is shared and noisy.
"""
