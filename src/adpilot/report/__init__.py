"""HTML reports: sections of text, tables and charts (inline SVG, no network needed to view)."""

from adpilot.report.html import Report

__all__ = ["Report"]
