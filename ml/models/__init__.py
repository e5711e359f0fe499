"""Fitted predictors: specialty router, urgency, novelty, doctor ranker, shared TF-IDF analysis, the bundle.

They are what serving loads; fitting them from data is `ml.training`'s job.
"""
