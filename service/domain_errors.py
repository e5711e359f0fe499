"""Errors of the service's own rules (not the store's); `service/errors.py` maps each to HTTP once."""

from __future__ import annotations


class InvalidFieldError(ValueError):
    """A request that passed the schema but breaks a rule naming one field (e.g. an answer dated
    before its case); answered as a 422 shaped like the schema's own validation errors."""

    def __init__(self, field: str, message: str, *, detail: str = "1 field(s) failed validation") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.detail = detail


class UnknownLanguageError(ValueError):
    """The language of a case was not given and could not be detected."""

    def __init__(self) -> None:
        super().__init__("could not tell whether the case is English or Spanish: send `language`")
