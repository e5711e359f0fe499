"""Domain errors of the case store; `service/errors.py` maps them to HTTP statuses once."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of everything the case store raises on purpose."""


class UnknownCaseError(StoreError, LookupError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case with id {case_id!r}")
        self.case_id = case_id


class UnknownDoctorError(StoreError, LookupError):
    def __init__(self, doctor_id: str) -> None:
        super().__init__(f"no doctor with id {doctor_id!r}")
        self.doctor_id = doctor_id


class UnknownRoutingError(StoreError, LookupError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no routing decision for request {request_id!r}")
        self.request_id = request_id


class CaseConflictError(StoreError):
    """A create with an id the store already holds with other content."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id!r} already exists with different content")
        self.case_id = case_id


class AnswerConflictError(StoreError):
    """An answer id reused for another case, doctor or time."""

    def __init__(self, answer_id: str, *, case_id: str, doctor_id: str) -> None:
        super().__init__(f"answer {answer_id!r} already exists for another case, doctor or time")
        self.answer_id = answer_id
        self.case_id = case_id  # of the refused answer
        self.doctor_id = doctor_id


class RoutingConflictError(StoreError):
    """A request id recorded twice with different decisions."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"routing decision for request {request_id!r} already recorded differently")
        self.request_id = request_id


class StoreUnavailableError(StoreError):
    """The database could not be reached or stayed locked past the busy timeout."""
