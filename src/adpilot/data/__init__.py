"""Data stage: canonical records, readers, column mapping, validation with quarantine, ingest."""

from adpilot.data.ingest import IngestResult, ingest_file
from adpilot.data.mapping import ColumnMapping
from adpilot.data.readers import RawTable, read_table
from adpilot.data.schema import SCHEMAS, get_schema
from adpilot.data.validation import Validated, validate

__all__ = [
    "SCHEMAS", "ColumnMapping", "IngestResult", "RawTable", "Validated", "get_schema",
    "ingest_file", "read_table", "validate",
]
