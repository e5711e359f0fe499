"""Evaluation: metrics (numpy only) and loaders for the real corpora in ../shared/data."""
