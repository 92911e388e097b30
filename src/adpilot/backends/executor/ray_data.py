"""Ray Data: each stage runs as ``map_batches`` on a pool of actors that load the model once.

Locally (no address) Ray is started with a bounded object store and its own temp folder and is
shut down by :meth:`RayExecutor.close`; with ``address`` ("auto" or "ray://head:10001") it
joins an existing cluster and leaves it running. Actors reserve ``Stage.num_cpus`` (< 1 by
default) so Ray's read tasks are never starved of a CPU on small machines.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from adpilot.backends.executor.base import Data, Executor, Progress, Stage, register_executor
from adpilot.deps import require


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Ray hands back Arrow-backed columns (``double[pyarrow]``…) and all-null columns as
    objects; convert them the way a Parquet read does, so both executors give the same dtypes."""
    if any(isinstance(d, pd.ArrowDtype) for d in frame.dtypes):
        import pyarrow as pa

        frame = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
            None).to_pandas()
    for col in frame.columns:  # an all-NaN float column travels as Arrow's null type
        if frame[col].dtype == object and len(frame) and frame[col].isna().all():
            frame[col] = frame[col].astype(float)
    return frame


def _files(path: Path) -> list[str]:
    return [str(f) for f in (sorted(path.glob("*.parquet")) if path.is_dir() else [path])]


@register_executor("ray")
class RayExecutor(Executor):
    """Ray Data executor. ``num_actors`` defaults to the cluster's CPU count (at least 1)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_actors: int | None = None,
                 num_cpus: int | None = None, object_store_memory: int = 1 << 30,
                 temp_dir: str | Path | None = None, progress: Progress | None = None,
                 show_progress: bool = True) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._ray = ray = require("ray", feature="the Ray executor")
        require("ray.data", feature="the Ray executor")
        self.progress = progress
        self._started = False
        self._temp: Path | None = None
        if not ray.is_initialized():
            common = {"ignore_reinit_error": True, "log_to_driver": False,
                      "include_dashboard": False}
            if address:
                ray.init(address=address, **common)
            else:
                if temp_dir is None:  # short path: Ray's unix sockets live under it
                    self._temp = Path(tempfile.mkdtemp(prefix="adpray-", dir="/tmp"))
                ray.init(num_cpus=num_cpus, object_store_memory=object_store_memory,
                         _temp_dir=str(Path(temp_dir or self._temp).resolve()), **common)
            self._started = True
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = show_progress
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.num_actors = num_actors or max(1, cpus)

    def _dataset(self, stage: Stage, data: Data):
        ray = self._ray
        if isinstance(data, pd.DataFrame):
            frame = data.reset_index(drop=True)
            bs = stage.batch_size
            chunks = [frame.iloc[i:i + bs].reset_index(drop=True) for i in range(0, len(frame), bs)]
            ds = ray.data.from_pandas(chunks or [frame])
        else:
            ds = ray.data.read_parquet(_files(Path(data)))
        return ds.map_batches(stage.cls, fn_constructor_kwargs=dict(stage.kwargs),
                              batch_size=stage.batch_size, batch_format="pandas",
                              compute=ray.data.ActorPoolStrategy(size=self.num_actors),
                              num_cpus=stage.num_cpus,
                              num_gpus=stage.num_gpus or None)

    def iter_batches(self, stage: Stage, data: Data) -> Iterator[pd.DataFrame]:
        total = len(data) if isinstance(data, pd.DataFrame) else 0
        done = 0
        for out in self._dataset(stage, data).iter_batches(batch_size=None,
                                                           batch_format="pandas"):
            done += len(out)
            if self.progress:
                self.progress(stage.name, done, total)
            yield _plain(out)

    def to_parquet(self, stage: Stage, data: Data, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.parquet"):
            old.unlink()
        self._dataset(stage, data).write_parquet(str(out.resolve()))
        return out

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
