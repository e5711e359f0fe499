"""The kinds of identifier the de-identifier removes, and the placeholder that replaces each."""

from __future__ import annotations

NAME = "NAME"
DATE = "DATE"  # dates of birth and other full personal dates
PHONE = "PHONE"
EMAIL = "EMAIL"
ADDRESS = "ADDRESS"
RECORD_ID = "RECORD_ID"  # MRN, NHC, nº de historia, expediente, NSS, NHS number
NATIONAL_ID = "NATIONAL_ID"  # DNI/NIE, CURP, US SSN, Canadian SIN, UK NI number
LOCATION = "LOCATION"  # cities, towns, provinces and postcodes (not countries)
INSURANCE_ID = "INSURANCE_ID"  # health-insurance and social-security card numbers
LICENCE_ID = "LICENCE_ID"  # a clinician's registration number ("NºCol: 46 28 52938")
KINDS = (NAME, DATE, PHONE, EMAIL, ADDRESS, RECORD_ID, NATIONAL_ID, LOCATION, INSURANCE_ID, LICENCE_ID)


def placeholder(kind: str) -> str:
    """The text that stands in for a removed identifier, e.g. '[NAME]'."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} not in {KINDS}")
    return f"[{kind}]"
