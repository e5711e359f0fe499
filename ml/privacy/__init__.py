"""De-identification of case posts before they are stored or embedded (English and Spanish)."""

from ml.privacy.deid import Deidentifier, DeidResult, Redaction
from ml.privacy.kinds import ADDRESS, DATE, EMAIL, KINDS, NAME, NATIONAL_ID, PHONE, RECORD_ID, placeholder

__all__ = [
    "ADDRESS",
    "DATE",
    "EMAIL",
    "KINDS",
    "NAME",
    "NATIONAL_ID",
    "PHONE",
    "RECORD_ID",
    "DeidResult",
    "Deidentifier",
    "Redaction",
    "placeholder",
]
