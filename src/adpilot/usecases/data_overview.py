"""The data overview: what is in the store (record counts, derived tables, the latest ingest
runs) and look-ups of its records (a profile, a segment and its members, a product, an
audience to write for). One path for the API and the dashboard; each shell only turns the
results into JSON or pages.

Errors are typed (:mod:`adpilot.errors`): :class:`~adpilot.errors.NotFoundError` for an unknown
id, :class:`~adpilot.errors.NotReadyError` for a table not built yet, whose message ends with
the remedy the shell gave (``build_hint``), :class:`~adpilot.errors.ConfigError` for a request
that names no audience."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from adpilot.data import columns as C
from adpilot.errors import ConfigError, NotFoundError, NotReadyError
from adpilot.jsonable import records
from adpilot.store.sql import Store

DERIVED = ("profiles", "segments")  # the tables profiling builds
DEFAULT_BUILD_HINT = "ingest data, then build the profiles"


class DataService:
    """Read-side look-ups over the store's records and derived tables. ``build_hint`` is the
    remedy a :class:`NotReadyError` names, in the words of the shell that asked (e.g. the API's
    ``ingest data, then run a profiling job (POST /v1/profiling/jobs)``)."""

    def __init__(self, store: Store, build_hint: str = DEFAULT_BUILD_HINT) -> None:
        self.store = store
        self.build_hint = build_hint

    def table(self, name: str) -> pd.DataFrame:
        """The derived table ``name``, or :class:`NotReadyError` when it is not built yet."""
        if not self.store.has_table(name):
            raise NotReadyError(f"no {name} yet: {self.build_hint}")
        return self.store.read(name)

    def counts(self) -> dict[str, int]:
        """Rows per record table of the store."""
        from adpilot.store.sql import TABLES

        return {k: self.store.count(k) for k in TABLES}

    def row_count(self, name: str) -> int:
        """Rows in a derived table (0 when it does not exist yet)."""
        from sqlalchemy import func, select, table

        if not self.store.has_table(name):
            return 0
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())

    def ingest_runs(self, last: int, *, newest_first: bool = False) -> list[dict]:
        """The ``last`` ingest runs as the public sees them (no server paths), oldest first
        unless ``newest_first``; none before the first ingest."""
        from adpilot.data.ingest import public_run

        if not self.store.has_table("ingest_runs"):
            return []
        runs = self.store.ingest_runs().tail(last)
        return [public_run(r) for r in records(runs.iloc[::-1] if newest_first else runs)]

    def overview(self, runs: int = 20, *, newest_first: bool = False) -> dict[str, Any]:
        """``counts`` per record table, rows of the ``derived`` tables (0: not built) and the
        latest ``ingest_runs`` (see :meth:`ingest_runs`)."""
        return {"counts": self.counts(), "derived": {t: self.row_count(t) for t in DERIVED},
                "ingest_runs": self.ingest_runs(runs, newest_first=newest_first)}

    def _one(self, name: str, column: str, value: str, missing: str) -> dict:
        """The row of table ``name`` whose ``column`` is ``value``, or NotFoundError(missing)."""
        t = self.table(name)
        row = t[t[column].astype(str) == str(value)]
        if row.empty:
            raise NotFoundError(missing)
        return records(row)[0]

    def profile(self, user_id: str) -> dict:
        """One user's profile (JSON-ready)."""
        return self._one("profiles", C.USER_ID, user_id, f"no profile for user {user_id!r}")

    def segment(self, segment_id: str) -> dict:
        """One segment's row (JSON-ready)."""
        return self._one("segments", C.SEGMENT, segment_id, f"unknown segment {segment_id!r}")

    def profiles(self, **filters: Any) -> pd.DataFrame:
        """Profiles matching ``filters`` (those of
        :func:`adpilot.profiling.profiles.query_profiles`)."""
        from adpilot.profiling.profiles import query_profiles

        return query_profiles(self.table("profiles"), **filters)

    def members(self, segment_id: str) -> tuple[dict, pd.DataFrame]:
        """A segment's row and its members' profiles; NotFoundError for an unknown segment."""
        seg = self.segment(segment_id)
        return seg, self.profiles(segment=str(segment_id))

    def product(self, product_id: str):
        """The product ``product_id`` as a :class:`~adpilot.data.records.Product`."""
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
