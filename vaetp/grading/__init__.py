"""Grading the TP: every submission runs in a sandbox, every verdict is computed outside it."""
