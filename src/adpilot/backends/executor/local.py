"""In-process batches: the default executor. One stage instance, batches in input order;
Parquet inputs are streamed (one batch in memory at a time)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from adpilot.backends.executor.base import (
    Data,
    Executor,
    Progress,
    Stage,
    register_executor,
)


def _parquet_files(path: Path) -> list[str]:
    return [str(f) for f in (sorted(path.glob("*.parquet")) if path.is_dir() else [path])]


def input_batches(data: Data, batch_size: int) -> tuple[Iterator[pd.DataFrame], int]:
    """Batches of exactly ``batch_size`` rows (the last may be shorter) and the row count."""
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index(drop=True)
        return (frame.iloc[i:i + batch_size] for i in range(0, len(frame), batch_size)), len(frame)
    import pyarrow as pa
    import pyarrow.dataset as pads

    ds = pads.dataset(_parquet_files(Path(data)), format="parquet")

    def gen() -> Iterator[pd.DataFrame]:
        pending: list[pa.RecordBatch] = []
        n = 0
        for rb in ds.to_batches(batch_size=batch_size):
            pending.append(rb)
            n += rb.num_rows
            while n >= batch_size:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, batch_size).to_pandas()
                rest = table.slice(batch_size)
                pending, n = rest.to_batches(), rest.num_rows
        if n:
            yield pa.Table.from_batches(pending).to_pandas()

    return gen(), ds.count_rows()


@register_executor("local")
class LocalExecutor(Executor):
    """Runs each stage in this process, batch after batch."""

    name = "local"

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress

    def iter_batches(self, stage: Stage, data: Data) -> Iterator[pd.DataFrame]:
        fn = stage.build()
        batches, total = input_batches(data, stage.batch_size)
        done = 0
        for batch in batches:
            out = fn(batch)
            done += len(batch)
            if self.progress:
                self.progress(stage.name, done, total)
            yield out

    def to_parquet(self, stage: Stage, data: Data, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.parquet"):
            old.unlink()
        for i, part in enumerate(self.iter_batches(stage, data)):
            if len(part):
                part.to_parquet(out / f"part-{i:06d}.parquet", index=False)
        return out
