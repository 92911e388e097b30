"""The executor contract: run a batch stage over a table, in-process or on a cluster.

A :class:`Stage` names a class and its constructor arguments. Each worker builds the class once
(loading its model there) and then calls it on batches of rows (``pandas.DataFrame`` in, out).
Stages must be *batch-invariant*: a row's output may depend on the row and the stage's
arguments only, never on which other rows share its batch. Then every executor gives the same
result, whatever the batch boundaries on the cluster.

Inputs are a DataFrame or a Parquet file/folder; outputs come back as a DataFrame (small
results) or are written as Parquet part files (large results, never collected in the driver).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from adpilot.errors import ConfigError
from adpilot.registry import Registry

# progress(stage name, rows done, rows total or 0 when unknown)
Progress = Callable[[str, int, int], None]
Data = pd.DataFrame | str | Path


@dataclass(frozen=True)
class Stage:
    """A batch transform: ``cls(**kwargs)`` is built once per worker, then called per batch.

    ``num_cpus`` / ``num_gpus`` are what one worker (Ray actor) reserves; keep ``num_cpus``
    below 1 on a small machine so Ray's read tasks still get a CPU (see DESIGN.md).
    """

    name: str
    cls: type
    kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1024
    num_cpus: float = 0.5
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"The 'batch_size' parameter of Stage must be an int >= 1. "
                              f"Got {self.batch_size}.")

    def build(self) -> Callable[[pd.DataFrame], pd.DataFrame]:
        return self.cls(**self.kwargs)


class Executor(ABC):
    """Runs stages over tables. Use as a context manager (``close`` frees the cluster link)."""

    name: str = ""

    @abstractmethod
    def iter_batches(self, stage: Stage, data: Data) -> Iterator[pd.DataFrame]:
        """Outputs batch by batch, as they finish (driver-side streaming; input order when the
        executor preserves order)."""

    @abstractmethod
    def to_parquet(self, stage: Stage, data: Data, out_dir: str | Path) -> Path:
        """Run ``stage`` and write its output as Parquet part files under ``out_dir``."""

    def map_batches(self, stage: Stage, data: Data) -> pd.DataFrame:
        """Run ``stage`` over ``data`` and return the whole output (small results only)."""
        parts = [b for b in self.iter_batches(stage, data) if len(b)]
        if not parts:
            return pd.DataFrame()
        return pd.concat(parts, ignore_index=True)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (the Ray executor shuts Ray down if it started it)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")
register_executor = _EXECUTORS.register      # class decorator: available to get_executor by name
unregister_executor = _EXECUTORS.unregister
available_executors = _EXECUTORS.names


def get_executor(name: str = "local", **kwargs) -> Executor:
    """An executor by registered name: ``local`` (default) or ``ray``."""
    return _EXECUTORS.build(name, **kwargs)


def read_parquet_parts(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file or a folder of part files written by an executor, in part order."""
    import pyarrow.dataset as pads

    p = Path(path)
    files = sorted(p.glob("*.parquet")) if p.is_dir() else [p]
    if not files:
        return pd.DataFrame(columns=columns or [])
    return pads.dataset([str(f) for f in files], format="parquet").to_table(
        columns=columns).to_pandas()
