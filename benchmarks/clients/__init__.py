"""Load clients measured by the benchmarks, each run as its own pinned subprocess.

Every client speaks the same small protocol (:mod:`benchmarks.clients.protocol`): it takes a
target URL, a request body, a concurrency and a measurement window on its command line, runs
closed loop (or open loop at a fixed arrival rate), and writes one JSON result file with the
streams it completed inside the window, its own CPU time over that window and one timing
sample per completed stream.
"""
