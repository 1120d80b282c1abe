"""Offload feasibility reports: the evidence on XDP programs side by side (HTML, JSON, Markdown).

``plan`` checks the inputs, ``gather`` collects the document (docs/report-schema.md),
``write_report`` turns it into files; ``run_report`` does all three into a folder atomically.
``offload report`` (``report_cmd.register``) is the command line.
"""

from offload.report.collect import (
    SCHEMA,
    Plan,
    ProgramSpec,
    ReportError,
    ReportOptions,
    collect_program,
    comparison_rows,
    plan,
)
from offload.report.render import write_report
from offload.report.report_cmd import gather, run_report

__all__ = ["SCHEMA", "Plan", "ProgramSpec", "ReportError", "ReportOptions", "collect_program",
           "comparison_rows", "gather", "plan", "run_report", "write_report"]
