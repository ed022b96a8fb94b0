"""``seofp report``: one self-contained HTML file (and the table as CSV) from MLflow runs and
listening-study analyses. Entry point: :func:`seofp_lab.report.build.build_report`."""

from seofp_lab.report.build import ReportError, ReportResult, build_report

__all__ = ["ReportError", "ReportResult", "build_report"]
