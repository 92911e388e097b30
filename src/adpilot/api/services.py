"""What the API and dashboard share on the application state: data look-ups and copy
generation, and the campaign service (the use case :mod:`adpilot.usecases.campaigns`, which
the app starts and stops). They only route calls to the library and guard shared state."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from adpilot.data import columns as C
from adpilot.errors import ConfigError, MissingDependencyError, NotFoundError, NotReadyError
from adpilot.jsonable import plain
from adpilot.store.sql import Store
from adpilot.usecases.campaigns import CampaignService

__all__ = ["CampaignService", "CopyService", "DataService", "NotFoundError", "NotReadyError",
           "jsonable", "records"]


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN → null, timestamps → ISO strings."""
    return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))


jsonable = plain  # the routers' name for it


class DataService:
    """Read-side look-ups over the store's derived tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def table(self, name: str) -> pd.DataFrame:
        if not self.store.has_table(name):
            raise NotReadyError(f"no {name} yet: ingest data, then run a profiling job "
                                "(POST /v1/profiling/jobs)")
        return self.store.read(name)

    def counts(self) -> dict[str, int]:
        from adpilot.store.sql import TABLES

        return {k: self.store.count(k) for k in TABLES}

    def row_count(self, name: str) -> int:
        """Rows in a derived table (0 when it does not exist yet)."""
        from sqlalchemy import func, select, table

        if not self.store.has_table(name):
            return 0
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())

    def _one(self, name: str, column: str, value: str, missing: str) -> dict:
        """The row of table ``name`` whose ``column`` is ``value``, or NotFoundError(missing)."""
        t = self.table(name)
        row = t[t[column].astype(str) == str(value)]
        if row.empty:
            raise NotFoundError(missing)
        return records(row)[0]

    def profile(self, user_id: str) -> dict:
        return self._one("profiles", C.USER_ID, user_id, f"no profile for user {user_id!r}")

    def segment(self, segment_id: str) -> dict:
        return self._one("segments", C.SEGMENT, segment_id, f"unknown segment {segment_id!r}")

    def product(self, product_id: str):
        from adpilot.data.records import Product

        products = self.store.read("products")
        row = products[products[C.ID].astype(str) == str(product_id)]
        if row.empty:
            raise NotFoundError(f"unknown product {product_id!r}")
        d = {k: v for k, v in row.iloc[0].to_dict().items()
             if not (v is None or (isinstance(v, float) and math.isnan(v)))}
        d.pop(C.ATTRIBUTES, None)
        if d.get(C.LANGUAGE) not in ("en", "zh", "und"):
            d.pop(C.LANGUAGE, None)
        return Product.model_validate(d)

    def audience(self, lang: str, *, segment: str | None = None, user_id: str | None = None,
                 description: str | None = None):
        """A generation audience from a segment, one user's profile, or a free description."""
        from adpilot.generation import Audience
        from adpilot.generation.campaign import segment_audiences

        if user_id:
            return Audience.model_validate(self.profile(user_id))
        if segment:
            self.segment(segment)
            audiences = segment_audiences(self.table("segments"), self.table("profiles"),
                                          self.store.read("reviews"), lang)
            return audiences[str(segment)]
        if description:
            return Audience(description=description)
        raise ConfigError("give a segment, a user_id or an audience description")


BackendFactory = Callable[[], Any]


class CopyService:
    """Copy generation with one lazily built LLM backend, used by one job at a time
    (in-process models are not thread-safe and take the whole machine anyway). Replies are
    cached in ``cache_dir`` (``Settings.llm_cache_dir``; None: not cached)."""

    def __init__(self, backend_factory: BackendFactory, cache_dir: Path | None = None) -> None:
        self._factory = backend_factory
        self._cache_dir = cache_dir
        self._backend = None
        self.lock = threading.Lock()  # held while a generation runs
        self._build_lock = threading.Lock()

    def generator(self, **options: Any):
        try:
            from adpilot.generation import CopyGenerator
        except ImportError as exc:  # the generation stage is optional in a slim install
            raise MissingDependencyError(f"copy generation is not available: {exc}") from None
        with self._build_lock:
            if self._backend is None:
                try:
                    self._backend = self._factory()
                except ImportError as exc:
                    raise MissingDependencyError(f"the LLM backend cannot be loaded: {exc}") from None
        return CopyGenerator(self._backend, **{"cache": self._cache_dir, **options})

    def check(self) -> None:
        """Raise :class:`MissingDependencyError` if copy cannot be generated here."""
        self.generator()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
