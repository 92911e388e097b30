"""Turning uplift estimates into decisions: which arm (or none) per customer, under costs and
a contact budget, and evaluating such policies on randomised data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adpilot.errors import ConfigError


@dataclass
class UpliftPolicy:
    """Pick, per customer, the arm with the largest expected profit, or the control.

    profit(arm) = value_per_conversion × uplift(arm) − cost_per_contact. With a budget
    (``budget`` = largest fraction of customers to contact), only the customers with the
    highest best-arm profit are contacted.
    """

    value_per_conversion: float = 1.0
    cost_per_contact: float = 0.0
    budget: float | None = None

    def __post_init__(self) -> None:
        if self.budget is not None and not 0 <= self.budget <= 1:
            raise ConfigError(f"The 'budget' parameter of UpliftPolicy must be a fraction in "
                              f"[0, 1]. Got {self.budget}.")

    def decide(self, uplift: np.ndarray) -> np.ndarray:
        """Arm index per row: -1 = control (no contact), j = treatment column j."""
        uplift = np.atleast_2d(uplift)
        profit = self.value_per_conversion * uplift - self.cost_per_contact
        best = profit.argmax(axis=1)
        best_profit = profit[np.arange(len(profit)), best]
        contact = best_profit > 0
        if self.budget is not None:
            k = int(np.floor(self.budget * len(profit)))
            order = np.argsort(-best_profit, kind="stable")
            allowed = np.zeros(len(profit), dtype=bool)
            allowed[order[:k]] = True
            contact &= allowed
        return np.where(contact, best, -1)


def deterministic_prob(decisions: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """π(a_i | x_i) for a deterministic policy: 1 where the decision equals the arm taken."""
    return (np.asarray(decisions) == np.asarray(taken)).astype(float)
