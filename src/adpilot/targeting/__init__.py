"""Targeting stage: who gets which message (uplift), policy evaluation, budgets."""
