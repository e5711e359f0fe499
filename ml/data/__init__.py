"""Typed platform data: what training, replay, evaluation, seeding and bulk loading consume.

`records` are the frozen records (cases, answers, resolutions, doctors, feedback), `PlatformData`
one snapshot of them with its provenance, and `Source` anything that yields one: the synthetic
world (`ml.data.synthetic`) or a store export the service hands over (`ml` never imports
`service`). The real corpora, which carry labelled texts rather than platform events, are read by
`ml.evaluation.corpora`.
"""

from ml.data.records import (
    AnswerRecord,
    CaseRecord,
    CaseTruth,
    DoctorRecord,
    FeedbackRecord,
    PlatformData,
    ResolutionRecord,
    Source,
)
from ml.data.splits import TimeSplit

__all__ = [
    "AnswerRecord",
    "CaseRecord",
    "CaseTruth",
    "DoctorRecord",
    "FeedbackRecord",
    "PlatformData",
    "ResolutionRecord",
    "Source",
    "TimeSplit",
]
