"""Results folders: written by every run, read by reports (see ``docs/results-format.md``).

One responsibility per module:

* :mod:`~chatprobe.results.folder`: the folder's file names, run ids, atomic writes,
  ``meta.json``, finding the folders of the last run;
* :mod:`~chatprobe.results.samples`: the sample format (fields defined once), its builder,
  its one writer and its one reader (typed columns);
* :mod:`~chatprobe.results.snapshot`: ``profiles.json``, the provider profiles at run time;
* :mod:`~chatprobe.results.reader`: loading a whole folder for a report.

The run-level figures computed from samples live in :mod:`chatprobe.metrics`.
"""

from __future__ import annotations

from chatprobe.results.folder import (
    CONTRACT,
    EMULATOR_TRUTH,
    GROUP_ENV,
    JUNIT,
    LOCUST_CSV_PREFIX,
    LOCUST_LOG,
    LOCUST_TIMINGS,
    META,
    PLAN,
    PROFILES,
    RESULTS_ENV,
    SAMPLES,
    SCHEMA_VERSION,
    STATUS,
    SUMMARY,
    find_run_folders,
    finish_meta,
    latest_run_folders,
    machine_info,
    new_run_dir,
    new_run_id,
    read_json,
    read_meta,
    results_root,
    utc_now_iso,
    write_json_atomic,
    write_meta,
    write_text_atomic,
)
from chatprobe.results.reader import Results, load_results
from chatprobe.results.samples import (
    SAMPLE_FIELDS,
    SampleField,
    SampleTable,
    SampleWriter,
    build_sample,
    encode_sample,
    iter_sample_batches,
    load_samples,
    new_sample,
    table_from_rows,
)
from chatprobe.results.snapshot import ProfileSnapshot, snapshot_profiles, write_profiles

__all__ = [
    "CONTRACT",
    "EMULATOR_TRUTH",
    "GROUP_ENV",
    "JUNIT",
    "LOCUST_CSV_PREFIX",
    "LOCUST_LOG",
    "LOCUST_TIMINGS",
    "META",
    "PLAN",
    "PROFILES",
    "RESULTS_ENV",
    "SAMPLES",
    "SAMPLE_FIELDS",
    "SCHEMA_VERSION",
    "STATUS",
    "SUMMARY",
    "ProfileSnapshot",
    "Results",
    "SampleField",
    "SampleTable",
    "SampleWriter",
    "build_sample",
    "encode_sample",
    "find_run_folders",
    "finish_meta",
    "iter_sample_batches",
    "latest_run_folders",
    "load_results",
    "load_samples",
    "machine_info",
    "new_run_dir",
    "new_run_id",
    "new_sample",
    "read_json",
    "read_meta",
    "results_root",
    "snapshot_profiles",
    "table_from_rows",
    "utc_now_iso",
    "write_json_atomic",
    "write_meta",
    "write_profiles",
    "write_text_atomic",
]
