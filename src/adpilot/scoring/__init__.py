"""Scoring stage: a scorecard per copy and an attractiveness model learned from A/B outcomes."""
