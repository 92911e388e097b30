"""Labels and metrics of the sentiment tasks: which classes a task has, how raw labels map to
them, the hash of the training data and the scores a prediction gets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from adpilot.errors import ConfigError, InputError

TASKS: dict[str, tuple[int, ...]] = {"rating": (1, 2, 3, 4, 5), "polarity": (0, 1)}
LANGS = ("en", "zh")

Progress = Callable[[int, int], None]  # (steps done, steps in all)


def check_task(task: str) -> None:
    """Raise :class:`ConfigError` unless ``task`` is one of :data:`TASKS`."""
    if task not in TASKS:
        raise ConfigError(f"The 'task' parameter of SentimentModel must be one of "
                          f"{', '.join(TASKS)}. Got {task!r}.")


def task_labels(labels: Sequence[Any], task: str) -> tuple[np.ndarray, np.ndarray]:
    """Map raw labels to the task's classes: ``(labels, keep_mask)``.

    ``rating`` takes 1-5. ``polarity`` takes 0/1 as is, or maps 1-5 ratings (1-2 → 0, 4-5 → 1,
    3 is dropped via the mask). Missing labels are dropped; any other value is an input error.
    """
    check_task(task)
    y = pd.to_numeric(pd.Series(list(labels)), errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(y)
    vals = set(np.unique(y[keep]).tolist())
    if task == "polarity" and not vals <= {0.0, 1.0}:
        if not vals <= {1.0, 2.0, 3.0, 4.0, 5.0}:
            raise InputError(f"polarity labels must be 0/1 or 1-5 ratings; got {sorted(vals)[:10]}")
        keep &= y != 3
        y = np.where(y >= 4, 1.0, 0.0)
    elif task == "rating" and not vals <= {1.0, 2.0, 3.0, 4.0, 5.0}:
        raise InputError(f"rating labels must be integers 1-5; got {sorted(vals)[:10]}")
    return np.where(keep, y, -1).astype(int), keep


def data_sha256(texts: Sequence[str], labels: Sequence[Any]) -> str:
    """sha256 of the training data (texts and labels, in order)."""
    h = hashlib.sha256()
    for t, y in zip(texts, labels, strict=True):
        h.update(str(t).encode("utf-8"))
        h.update(b"\x1f")
        h.update(str(int(y)).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def detect_corpus_language(texts: Sequence[str]) -> str:
    """``zh`` when most texts are Chinese, else ``en``."""
    from adpilot.data.language import detect_language

    langs = detect_language(pd.Series(list(texts[:2000])))
    return "zh" if (langs == "zh").mean() > 0.5 else "en"


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-averaged F1 (scikit-learn's)."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro"))


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """``n``, ``accuracy`` and ``macro_f1`` of a prediction."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return {"n": len(yt), "accuracy": float((yt == yp).mean()) if len(yt) else float("nan"),
            "macro_f1": macro_f1(yt, yp) if len(yt) else float("nan")}
