"""Executors run batch stages over tables: ``local`` (in-process batches, the default) or
``ray`` (Ray Data ``map_batches`` with model-holding actors; needs the ``ray`` extra). See
:mod:`adpilot.backends.executor.base`.

An executor only runs the :class:`Stage` it is given; the stages themselves live with their
stage of the workflow (``adpilot.profiling.steps``: sentiment, aspects, embeddings;
``adpilot.scoring.batch``: scorecards; ``adpilot.generation.batch``: copy), never here.
"""

from __future__ import annotations

from adpilot.backends.executor.base import (
    Executor,
    Stage,
    available_executors,
    get_executor,
    read_parquet_parts,
    register_executor,
    unregister_executor,
)
from adpilot.backends.executor.local import LocalExecutor


def _ray_factory(**kwargs) -> Executor:
    # imported on first use: Ray is an optional extra (MissingDependencyError names it)
    from adpilot.backends.executor.ray_data import RayExecutor

    return RayExecutor(**kwargs)


register_executor("ray")(_ray_factory)

__all__ = ["Executor", "LocalExecutor", "Stage", "available_executors", "get_executor",
           "read_parquet_parts", "register_executor", "unregister_executor"]
