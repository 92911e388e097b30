"""The ensemble of the two halves as pure functions: average their class probabilities with the
TF-IDF weight, shift them by per-class log-offsets, and choose weight and offsets on the
validation slice (never on test data)."""

from __future__ import annotations

import numpy as np


def adjust(p: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``p`` shifted by the per-class log-offsets ``bias`` and renormalised."""
    if bias is None or not np.any(bias):
        return p
    q = p * np.exp(bias)
    return q / q.sum(1, keepdims=True)


def mix(p_tr: np.ndarray, p_tfidf: np.ndarray, weight: float, bias: np.ndarray | None
        ) -> np.ndarray:
    """The shipped probabilities: weighted average of the halves, then the class offsets."""
    return adjust((1 - weight) * p_tr + weight * p_tfidf, bias)


def objective(classes: np.ndarray, y: np.ndarray, p: np.ndarray) -> float:
    """Accuracy + macro-F1 of ``argmax(p)`` (both count: minority ratings matter for
    profiles); a confusion-matrix count, fast enough for a grid search."""
    k = len(classes)
    yi, pi = np.searchsorted(classes, y), p.argmax(1)
    cm = np.bincount(yi * k + pi, minlength=k * k).reshape(k, k)
    tp = np.diag(cm)
    denom = 2 * tp + (cm.sum(0) - tp) + (cm.sum(1) - tp)
    f1 = 2 * tp[denom > 0] / denom[denom > 0]  # as sklearn: classes seen in y or pred
    return float(tp.sum() / len(y)) + float(f1.mean())


def choose_bias(classes: np.ndarray, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log-probability offsets per class (coordinate ascent on the validation objective):
    the plain argmax under-predicts rare classes, which costs macro-F1."""
    logp = np.log(np.clip(p, 1e-12, None))
    bias = np.zeros(p.shape[1])
    best = objective(classes, y, logp)
    for _ in range(3):
        for c in range(p.shape[1]):
            for b in np.round(np.arange(-1.5, 1.51, 0.1), 2):
                trial = bias.copy()
                trial[c] = b
                score = objective(classes, y, logp + trial)
                if score > best + 1e-9:
                    best, bias = score, trial
    return bias


def choose_weight(classes: np.ndarray, p_tr: np.ndarray, p_tfidf: np.ndarray, y: np.ndarray,
                  *, tfidf_weight: float | str = "auto", tune_bias: bool = True
                  ) -> tuple[float, np.ndarray]:
    """TF-IDF weight (grid of 0.05 steps, or the fixed ``tfidf_weight``) and class offsets
    (when ``tune_bias``), chosen jointly on validation."""
    grid = (np.round(np.arange(0, 1.0001, 0.05), 2) if tfidf_weight == "auto"
            else [float(tfidf_weight)])
    best: tuple[float, float, np.ndarray] = (-1.0, 0.0, np.zeros(p_tr.shape[1]))
    for w in grid:
        mixed = (1 - w) * p_tr + w * p_tfidf
        bias = choose_bias(classes, mixed, y) if tune_bias else np.zeros(p_tr.shape[1])
        score = objective(classes, y, np.log(np.clip(mixed, 1e-12, None)) + bias)
        if score > best[0] + 1e-9:
            best = (score, float(w), bias)
    return best[1], best[2]
