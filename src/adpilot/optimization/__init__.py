"""Optimisation stage: campaigns, bandit allocation, feedback, experiment statistics, OPE."""
