"""SQLAlchemy store: one table per record kind, idempotent upserts keyed by record id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from adpilot.data.schema import MAX_STR_CHARS, SCHEMAS, FieldSpec, get_schema
from adpilot.errors import ConfigError, StoreError

_CHUNK = 5_000  # rows per INSERT batch: bounded memory, few round trips

metadata = MetaData()


def _column(spec: FieldSpec, primary: bool) -> Column:
    kind = {
        "str": String(MAX_STR_CHARS), "text": Text(), "int": Integer(), "float": Float(),
        "datetime": DateTime(), "choice": String(32), "language": String(8),
    }[spec.kind]
    if primary:
        return Column(spec.name, String(MAX_STR_CHARS), primary_key=True)
    return Column(spec.name, kind, nullable=True)


TABLES: dict[str, Table] = {
    name: Table(
        name, metadata,
        *[_column(f, f.name == schema.id_field) for f in schema.fields],
        Column("attributes", Text(), nullable=False, default="{}"),
    )
    for name, schema in SCHEMAS.items()
}

# Campaign reports and policy refreshes count events per campaign.
Index("ix_events_campaign_variant", TABLES["events"].c.campaign, TABLES["events"].c.variant)

INGEST_RUNS = Table(
    "ingest_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("read", Integer, nullable=False),
    Column("kept", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("details", JSON, nullable=True),
    Column("finished_at", DateTime, nullable=False),
)


class Store:
    """Canonical records in a SQL database.

    Writes run in one transaction per call and are idempotent by record id: re-ingesting the
    same rows updates them in place and adds none.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(
                    parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, future=True)
        except (ArgumentError, ImportError) as exc:
            raise ConfigError(f"cannot use database URL {self.safe_url}: {exc}") from None
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"unsupported database {self.dialect!r}; use sqlite or postgresql")
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        try:
            from sqlalchemy.engine import make_url

            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<database url>"

    def init(self) -> Store:
        """Create missing tables, and add to each record table the (nullable) columns a newer
        schema declares, so a store made by an older version takes the new files."""
        try:
            metadata.create_all(self.engine)
            self._add_missing_columns()
        except OperationalError as exc:
            raise StoreError(f"cannot open database {self.safe_url}: {exc.orig}") from None
        return self

    def _add_missing_columns(self) -> None:
        inspector = inspect(self.engine)
        quote = self.engine.dialect.identifier_preparer.quote
        with self.engine.begin() as conn:
            for name, table in TABLES.items():
                have = {c["name"] for c in inspector.get_columns(name)}
                for col in table.columns:
                    if col.name not in have:  # never the primary key: the table has it
                        kind = col.type.compile(dialect=self.engine.dialect)
                        conn.execute(text(f"ALTER TABLE {quote(name)} ADD COLUMN "
                                          f"{quote(col.name)} {kind}"))

    def _insert(self, table: Table):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def upsert(self, kind: str, frame: pd.DataFrame) -> int:
        """Insert or update ``frame`` (canonical columns) by id; returns rows newly inserted."""
        schema = get_schema(kind)
        table = TABLES[kind]
        cols = [c.name for c in table.columns if c.name in frame.columns]
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[schema.id_field],
            set_={c: stmt.excluded[c] for c in cols if c != schema.id_field},
        )
        before = self.count(kind)
        try:
            with self.engine.begin() as conn:
                for chunk in _records(frame[cols]):
                    conn.execute(stmt, chunk)
        except SQLAlchemyError as exc:
            raise StoreError(f"writing {kind} to {self.safe_url} failed: {exc}") from None
        return self.count(kind) - before

    def insert_new(self, kind: str, frame: pd.DataFrame) -> list[str]:
        """Insert the rows whose id is not stored yet (others are left as they are); returns
        the ids actually inserted, so callers can count exactly what is new (append-only
        records such as feedback events).

        Rows go as multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` statements built
        from whole columns: the hot path of event ingest, about 5× faster than per-row dicts
        through SQLAlchemy's parameter processing."""
        schema = get_schema(kind)
        table = TABLES[kind]
        cols = [c.name for c in table.columns if c.name in frame.columns]
        if frame.empty:
            return []
        quote = self.engine.dialect.identifier_preparer.quote
        mark = "?" if self.dialect == "sqlite" else "%s"
        values = _column_values(frame[cols], as_text_dates=self.dialect == "sqlite")
        per_stmt = max(1, _MAX_PARAMS // len(cols))
        head = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in cols)}) VALUES ")
        tail = (f" ON CONFLICT ({quote(schema.id_field)}) DO NOTHING "
                f"RETURNING {quote(schema.id_field)}")
        row_marks = "(" + ", ".join([mark] * len(cols)) + ")"
        inserted: list[str] = []
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(values), per_stmt):
                    part = values[start:start + per_stmt]
                    sql = head + ", ".join([row_marks] * len(part)) + tail
                    result = conn.exec_driver_sql(sql, tuple(part.ravel().tolist()))
                    inserted += [row[0] for row in result]
        except SQLAlchemyError as exc:
            raise StoreError(f"writing {kind} to {self.safe_url} failed: {exc}") from None
        return inserted

    def count(self, kind: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(TABLES[kind])).scalar_one())

    def read(self, kind: str) -> pd.DataFrame:
        """The whole table as a DataFrame (use SQL or DuckDB for tables that do not fit)."""
        with self.engine.connect() as conn:
            return pd.read_sql_table(kind, conn)

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Replace a derived table (profiles, segments, …) in one transaction."""
        if name in TABLES or name == "ingest_runs":
            raise ConfigError(f"{name!r} is a record table; use upsert")
        try:
            with self.engine.begin() as conn:
                frame.to_sql(name, conn, if_exists="replace", index=False, chunksize=_CHUNK)
        except SQLAlchemyError as exc:
            raise StoreError(f"writing {name} to {self.safe_url} failed: {exc}") from None

    def has_table(self, name: str) -> bool:
        from sqlalchemy import inspect

        return inspect(self.engine).has_table(name)

    def log_ingest(self, *, kind: str, source: str, read: int, kept: int, quarantined: int,
                   inserted: int, details: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(INGEST_RUNS.insert().values(
                kind=kind, source=source, read=read, kept=kept, quarantined=quarantined,
                inserted=inserted, details=details, finished_at=datetime.now(UTC).replace(tzinfo=None)))

    def ingest_runs(self) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql_table("ingest_runs", conn)

    def dispose(self) -> None:
        self.engine.dispose()


def _records(frame: pd.DataFrame) -> Iterator[list[dict]]:
    """Rows as dicts with None for missing values and Python datetimes, in chunks."""
    for start in range(0, len(frame), _CHUNK):
        part = frame.iloc[start:start + _CHUNK].astype(object)
        # pd.Timestamp is a datetime subclass, so both drivers take it as it is.
        yield part.where(part.notna(), None).to_dict("records")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Write-ahead log: readers (dashboard, reports) never block the writer, and a commit is
    an append without an fsync of the main file (``synchronous=NORMAL`` keeps every committed
    transaction through a process crash; only an OS crash or power loss can undo the last
    ones). Wait for a busy database instead of failing at once."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# bound parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535
_MAX_PARAMS = 30_000


def _column_values(frame: pd.DataFrame, *, as_text_dates: bool) -> np.ndarray:
    """A 2-D object array of driver-ready values, built column by column: None for missing,
    Python scalars, and dates as SQLAlchemy's SQLite text format where ``as_text_dates``."""
    out = np.empty(frame.shape, dtype=object)
    for j, name in enumerate(frame.columns):
        col = frame[name]
        missing = col.isna().to_numpy()
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            col = col.dt.strftime("%Y-%m-%d %H:%M:%S.%f") if as_text_dates else col.astype(object)
        values = col.astype(object).to_numpy(copy=True)
        values[missing] = None
        out[:, j] = values
    return out


def open_store(url: str) -> Store:
    """Open (and create if needed) the store at the SQLAlchemy ``url``. The library reads no
    settings: a shell passes the configured URL in (``Settings.db_url``, see
    :func:`adpilot.cli._common.open_store`)."""
    return Store(url).init()
