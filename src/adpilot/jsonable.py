"""JSON for results that carry numpy scalars, NaN and timestamps (CLI ``--json``, API jobs,
the rows of a table the API and dashboard show)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported by whoever has a frame
    import pandas as pd


def json_default(o: Any) -> Any:
    """``json.dumps(default=…)``: numpy scalars → Python, NaN → null, dates → ISO strings."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if math.isnan(o) else float(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_default, **kwargs)


def plain(value: Any) -> Any:
    """``value`` as plain JSON types: numpy scalars → Python, NaN → null, timestamps → ISO strings."""
    return json.loads(dumps(value), parse_constant=lambda _: None)


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows of ``frame``: NaN → null, timestamps → ISO strings."""
    return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))
