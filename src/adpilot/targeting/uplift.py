"""Uplift (heterogeneous treatment effect) learners for one or many treatments and a control.

scikit-learn style: configuration in ``__init__``, ``fit(X, treatment, y)`` returns ``self``,
learned state in attributes ending in ``_``; ``predict_uplift(X)`` returns one column per
treatment (in ``treatments_`` order): the estimated change in the outcome versus the control.

- :class:`TLearner`: one outcome model per arm; uplift = μ_t(x) − μ_c(x).
- :class:`XLearner` (Künzel et al. 2019): imputed effects regressed per arm, blended by the
  propensity.
- :class:`DRLearner` (Kennedy 2020): doubly robust pseudo-outcomes with cross-fitting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold

from adpilot.errors import ConfigError, NotFittedError
from adpilot.registry import Registry


def _default_classifier(seed: int) -> BaseEstimator:
    # Shallow, heavily regularised trees: uplift is a small difference of two noisy
    # predictions, and deep models mostly add noise to it (checked on Hillstrom).
    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_depth=3,
                                          min_samples_leaf=400, random_state=seed)


def _default_regressor(seed: int) -> BaseEstimator:
    return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.05, max_depth=3,
                                         min_samples_leaf=400, random_state=seed)


def _outcome(model: BaseEstimator, x: np.ndarray) -> np.ndarray:
    """E[y | x]: the positive-class probability for classifiers, the prediction otherwise."""
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x)
        return proba[:, 1] if proba.shape[1] > 1 else np.full(len(x), float(model.classes_[0]))
    return model.predict(x)


@dataclass
class _UpliftBase:
    control: Any = 0
    base_model: BaseEstimator | None = None
    seed: int = 0
    propensity: dict | None = None  # arm -> P(arm); default: the arm shares in the data
    treatments_: list = field(default_factory=list, init=False)

    def _check(self, x, treatment, y):
        x = np.asarray(x, dtype=float)
        treatment = np.asarray(treatment)
        y = np.asarray(y, dtype=float)
        if not (len(x) == len(treatment) == len(y)):
            raise ConfigError(f"X, treatment and y must have the same length; got {len(x)}, "
                              f"{len(treatment)}, {len(y)}")
        arms = list(dict.fromkeys(treatment.tolist()))
        if self.control not in arms:
            raise ConfigError(f"control {self.control!r} not among treatments {arms}")
        self.treatments_ = sorted((a for a in arms if a != self.control), key=str)
        self.binary_ = set(np.unique(y)) <= {0.0, 1.0}
        shares = {a: float(np.mean(treatment == a)) for a in arms}
        self.propensity_ = {**shares, **(self.propensity or {})}
        return x, treatment, y

    def _model(self, binary: bool | None = None) -> BaseEstimator:
        binary = self.binary_ if binary is None else binary
        if self.base_model is not None:
            return clone(self.base_model)
        return _default_classifier(self.seed) if binary else _default_regressor(self.seed)

    def _require_fit(self) -> None:
        if not self.treatments_:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit first.")


@dataclass
class TLearner(_UpliftBase):
    """One outcome model per arm (control included)."""

    def fit(self, x, treatment, y) -> TLearner:
        x, treatment, y = self._check(x, treatment, y)
        self.models_ = {a: self._model().fit(x[treatment == a], y[treatment == a])
                        for a in [self.control, *self.treatments_]}
        return self

    def predict_outcomes(self, x) -> np.ndarray:
        """E[y | x, arm] for the control then each treatment (n × (1 + k))."""
        self._require_fit()
        x = np.asarray(x, dtype=float)
        return np.column_stack([_outcome(self.models_[a], x)
                                for a in [self.control, *self.treatments_]])

    def predict_uplift(self, x) -> np.ndarray:
        out = self.predict_outcomes(x)
        return out[:, 1:] - out[:, :1]


@dataclass
class XLearner(_UpliftBase):
    """Imputed treatment effects regressed per arm, blended by the propensity."""

    def fit(self, x, treatment, y) -> XLearner:
        x, treatment, y = self._check(x, treatment, y)
        c = treatment == self.control
        mu_c = self._model().fit(x[c], y[c])
        self.effect_models_ = {}
        for arm in self.treatments_:
            t = treatment == arm
            mu_t = self._model().fit(x[t], y[t])
            d_t = y[t] - _outcome(mu_c, x[t])  # what treatment added for the treated
            d_c = _outcome(mu_t, x[c]) - y[c]  # what it would have added for the controls
            tau_t = self._model(binary=False).fit(x[t], d_t)
            tau_c = self._model(binary=False).fit(x[c], d_c)
            p = self.propensity_[arm] / (self.propensity_[arm] + self.propensity_[self.control])
            self.effect_models_[arm] = (tau_t, tau_c, p)
        return self

    def predict_uplift(self, x) -> np.ndarray:
        self._require_fit()
        x = np.asarray(x, dtype=float)
        cols = []
        for arm in self.treatments_:
            tau_t, tau_c, p = self.effect_models_[arm]
            # weight the estimate learned on the larger group more (g = P(treated))
            cols.append(p * tau_c.predict(x) + (1 - p) * tau_t.predict(x))
        return np.column_stack(cols)


@dataclass
class DRLearner(_UpliftBase):
    """Doubly robust pseudo-outcomes (cross-fitted outcome models) regressed on features."""

    folds: int = 2

    def fit(self, x, treatment, y) -> DRLearner:
        x, treatment, y = self._check(x, treatment, y)
        arms = [self.control, *self.treatments_]
        mu = np.zeros((len(x), len(arms)))
        for train, test in KFold(self.folds, shuffle=True, random_state=self.seed).split(x):
            for j, arm in enumerate(arms):
                mask = treatment[train] == arm
                model = self._model().fit(x[train][mask], y[train][mask])
                mu[test, j] = _outcome(model, x[test])
        self.effect_models_ = {}
        c = treatment == self.control
        p_c = self.propensity_[self.control]
        for j, arm in enumerate(self.treatments_, start=1):
            t = treatment == arm
            p_t = self.propensity_[arm]
            pseudo = (mu[:, j] - mu[:, 0] + t * (y - mu[:, j]) / p_t - c * (y - mu[:, 0]) / p_c)
            self.effect_models_[arm] = self._model(binary=False).fit(x, pseudo)
        return self

    def predict_uplift(self, x) -> np.ndarray:
        self._require_fit()
        x = np.asarray(x, dtype=float)
        return np.column_stack([self.effect_models_[a].predict(x) for a in self.treatments_])


# an uplift learner: fit(X, treatment, y) -> self, predict_uplift(X) -> one column per treatment,
# treatments_ (the contract tests/test_contracts.py checks)
LEARNERS: Registry[Callable[..., Any]] = Registry(
    "uplift learner", {"t": TLearner, "x": XLearner, "dr": DRLearner})
register_learner = LEARNERS.register      # class decorator: available to make_learner by name
unregister_learner = LEARNERS.unregister


def make_learner(name: str, **kwargs) -> _UpliftBase:
    """An uplift learner by name: ``t``, ``x`` or ``dr``."""
    return LEARNERS.build(name, **kwargs)
