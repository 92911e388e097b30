"""Allocation policies over a campaign's variants. Every decision returns the arm and the
probability with which it was chosen (the propensity), which off-policy evaluation needs.

- :class:`FixedSplit`: A/B(/n) with fixed weights;
- :class:`ThompsonSampling`: Beta-Bernoulli Thompson sampling with an exploration floor;
- :class:`LinearThompson`: contextual (linear) Thompson sampling over profile features.

State is a plain dict (``state()`` / ``from_state``) so it persists in the store and survives
restarts; ``add_arm`` brings a new variant into a running campaign (cold start: prior only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from adpilot.errors import ConfigError
from adpilot.registry import Registry

_MC_DRAWS = 2000  # Monte Carlo draws for Thompson propensities (cached until the state changes)


class Policy:
    """Base: arms by name; ``choose`` → (arm, propensity); ``update`` with a 0/1 reward."""

    kind: ClassVar[str] = ""

    def __init__(self, arms: list[str]) -> None:
        if not arms:
            raise ConfigError(f"{type(self).__name__} needs at least one arm")
        if len(set(arms)) != len(arms):
            raise ConfigError(f"arm names must be unique; got {arms}")
        self.arms = list(arms)

    def probabilities(self, context: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def choose(self, rng: np.random.Generator, context: np.ndarray | None = None,
               ) -> tuple[str, float]:
        p = self.probabilities(context)
        i = int(rng.choice(len(p), p=p)) if len(p) > 1 else 0
        return self.arms[i], float(p[i])

    def update(self, arm: str, reward: float, context: np.ndarray | None = None) -> None:
        """Most policies learn; a fixed split does not."""

    def add_arm(self, arm: str) -> None:
        if arm in self.arms:
            raise ConfigError(f"arm {arm!r} already exists")
        self.arms.append(arm)

    def remove_arm(self, arm: str) -> int:
        """Stop choosing ``arm`` (a retired variant); returns its former index."""
        if arm not in self.arms:
            raise ConfigError(f"no arm {arm!r}; arms are {self.arms}")
        if len(self.arms) == 1:
            raise ConfigError(f"cannot remove {arm!r}: it is the only arm left")
        i = self.arms.index(arm)
        del self.arms[i]
        return i

    def state(self) -> dict:
        return {"kind": self.kind, "arms": self.arms}


class FixedSplit(Policy):
    kind = "fixed"

    def __init__(self, arms: list[str], weights: list[float] | None = None) -> None:
        super().__init__(arms)
        w = np.ones(len(arms)) if weights is None else np.asarray(weights, dtype=float)
        if len(w) != len(arms) or (w < 0).any() or w.sum() == 0:
            raise ConfigError(f"weights must be {len(arms)} non-negative numbers, got {weights}")
        self.weights = list(w / w.sum())

    def probabilities(self, context=None) -> np.ndarray:
        return np.asarray(self.weights)

    def add_arm(self, arm: str) -> None:
        super().add_arm(arm)
        self.weights = list(np.ones(len(self.arms)) / len(self.arms))

    def remove_arm(self, arm: str) -> int:
        i = super().remove_arm(arm)
        w = np.delete(np.asarray(self.weights), i)
        self.weights = list(w / w.sum()) if w.sum() > 0 else list(np.ones(len(w)) / len(w))
        return i

    def state(self) -> dict:
        return {**super().state(), "weights": self.weights}


class ThompsonSampling(Policy):
    """Beta(1 + successes, 1 + failures) per arm; each arm keeps at least ``floor / K`` of
    the traffic so late winners can still be discovered and propensities stay positive."""

    kind = "thompson"

    def __init__(self, arms: list[str], floor: float = 0.05, alpha: list[float] | None = None,
                 beta: list[float] | None = None, seed: int = 0,
                 counts: dict | None = None) -> None:
        super().__init__(arms)
        if not 0 <= floor < 1:
            raise ConfigError(f"The 'floor' parameter of ThompsonSampling must be in [0, 1). "
                              f"Got {floor}.")
        self.floor = floor
        self.alpha = list(alpha) if alpha else [1.0] * len(arms)
        self.beta = list(beta) if beta else [1.0] * len(arms)
        self._rng = np.random.default_rng(seed)
        self._cache: np.ndarray | None = None
        self.counts = counts  # raw impression/success totals behind alpha/beta, when stored

    def probabilities(self, context=None) -> np.ndarray:
        if self._cache is None:
            draws = self._rng.beta(np.asarray(self.alpha)[:, None], np.asarray(self.beta)[:, None],
                                   size=(len(self.arms), _MC_DRAWS))
            wins = np.bincount(draws.argmax(axis=0), minlength=len(self.arms)) / _MC_DRAWS
            self._cache = self.floor / len(self.arms) + (1 - self.floor) * wins
        return self._cache

    def update(self, arm: str, reward: float, context=None) -> None:
        i = self.arms.index(arm)
        self.alpha[i] += reward
        self.beta[i] += 1 - reward
        self._cache = None

    def update_counts(self, arm: str, successes: float, trials: float) -> None:
        """Batch update: ``successes`` rewards out of ``trials`` impressions."""
        i = self.arms.index(arm)
        self.alpha[i] += successes
        self.beta[i] += trials - successes
        self._cache = None

    def add_arm(self, arm: str) -> None:
        super().add_arm(arm)
        self.alpha.append(1.0)
        self.beta.append(1.0)
        if self.counts:
            self.counts = {k: [*v, 0.0] for k, v in self.counts.items()}
        self._cache = None

    def remove_arm(self, arm: str) -> int:
        i = super().remove_arm(arm)
        del self.alpha[i], self.beta[i]
        if self.counts:
            self.counts = {k: [x for j, x in enumerate(v) if j != i] for k, v in self.counts.items()}
        self._cache = None
        return i

    def state(self) -> dict:
        state = {**super().state(), "floor": self.floor, "alpha": self.alpha, "beta": self.beta}
        return {**state, "counts": self.counts} if self.counts else state


class LinearThompson(Policy):
    """Linear Thompson sampling (Agrawal & Goyal 2013): per arm, a Bayesian linear model of
    the reward on the context; sample weights, pick the arm with the highest sampled reward."""

    kind = "linear_thompson"

    def __init__(self, arms: list[str], dim: int, noise: float = 0.5, floor: float = 0.05,
                 precision: list | None = None, b: list | None = None, seed: int = 0) -> None:
        super().__init__(arms)
        self.dim, self.noise, self.floor = dim, noise, floor
        self.precision = [np.asarray(p, float) for p in precision] if precision else [
            np.eye(dim) for _ in arms]
        self.b = [np.asarray(v, float) for v in b] if b else [np.zeros(dim) for _ in arms]
        self._rng = np.random.default_rng(seed)

    def _context(self, context) -> np.ndarray:
        x = np.asarray(context, dtype=float).ravel()
        if x.shape != (self.dim,):
            raise ConfigError(f"context must have {self.dim} features, got {x.shape[0]}")
        return x

    def probabilities(self, context=None) -> np.ndarray:
        x = self._context(context)
        means, sds = [], []
        for prec, b in zip(self.precision, self.b, strict=True):
            cov = np.linalg.inv(prec)
            means.append(x @ cov @ b)
            sds.append(self.noise * np.sqrt(max(x @ cov @ x, 1e-12)))
        draws = self._rng.normal(np.asarray(means)[:, None], np.asarray(sds)[:, None],
                                 size=(len(self.arms), 500))
        wins = np.bincount(draws.argmax(axis=0), minlength=len(self.arms)) / 500
        return self.floor / len(self.arms) + (1 - self.floor) * wins

    def update(self, arm: str, reward: float, context=None) -> None:
        i = self.arms.index(arm)
        x = self._context(context)
        self.precision[i] = self.precision[i] + np.outer(x, x)
        self.b[i] = self.b[i] + reward * x

    def add_arm(self, arm: str) -> None:
        super().add_arm(arm)
        self.precision.append(np.eye(self.dim))
        self.b.append(np.zeros(self.dim))

    def remove_arm(self, arm: str) -> int:
        i = super().remove_arm(arm)
        del self.precision[i], self.b[i]
        return i

    def state(self) -> dict:
        return {**super().state(), "dim": self.dim, "noise": self.noise, "floor": self.floor,
                "precision": [p.tolist() for p in self.precision],
                "b": [v.tolist() for v in self.b]}


POLICIES: Registry[type[Policy]] = Registry(
    "policy kind", {p.kind: p for p in (FixedSplit, ThompsonSampling, LinearThompson)})


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a :class:`Policy` subclass buildable by its ``kind`` (what
    :func:`policy_from_state` and the campaigns read from the store)."""
    if not cls.kind:
        raise ConfigError(f"{cls.__name__} needs a non-empty 'kind' to be registered")
    POLICIES[cls.kind] = cls
    return cls


def unregister_policy(kind: str) -> None:
    """Forget the policy registered as ``kind`` (tests that register their own)."""
    POLICIES.unregister(kind)


def policy_from_state(state: dict[str, Any]) -> Policy:
    """Rebuild a policy from :meth:`Policy.state` (what the store keeps)."""
    state = dict(state)
    kind = state.pop("kind", None)
    return POLICIES.build(str(kind), **state)
