"""Serving-time routing: the engine, live doctor state and the answer book (what a worker holds)."""
