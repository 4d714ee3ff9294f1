"""Snapshot bootstrap: load a CSV, JSONL or SQL snapshot into ``profile-changes``.

Rows become ordinary change events stamped with their update time (a mapped column, else the
snapshot time), so the processor's per-property merge keeps every fresher live value. The job
validates before producing, reports rejected rows, confirms deliveries at every checkpoint
and resumes after a crash from its checkpoint. ``streams bootstrap`` calls :func:`run_bootstrap`.
"""

from streams.bootstrap.cli import run_bootstrap
from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.mapping import BootstrapMapping, load_mapping, parse_mapping
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import JobReport, Status

__all__ = [
    "BootstrapJob",
    "BootstrapMapping",
    "JobOptions",
    "JobReport",
    "Status",
    "load_mapping",
    "parse_mapping",
    "run_bootstrap",
]
