"""Quality control: self-contained HTML reports (pure numpy and matplotlib)."""

from microsight.qc.report import Report, format_value

__all__ = ["Report", "format_value"]
