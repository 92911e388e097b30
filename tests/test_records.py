"""The pydantic records and the DataFrame schemas describe the same columns."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adpilot.data.records import RECORD_TYPES, Review
from adpilot.data.schema import SCHEMAS


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_record_fields_match_schema(kind):
    fields = set(RECORD_TYPES[kind].model_fields) - {"attributes"}
    assert fields == set(SCHEMAS[kind].names)


def test_review_record_rejects_empty_text():
    with pytest.raises(ValidationError):
        Review(id="r1", text="")
