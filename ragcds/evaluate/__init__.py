"""Evaluation: question sets, per-item metrics, bootstrap statistics, the resumable runner, reports."""
