"""Sentence encoders that map English and Spanish case text into one vector space."""

from ml.embeddings.base import Encoder, EncoderFingerprint, FingerprintMismatchError
from ml.embeddings.factory import DEFAULT_ENCODER, EncoderSpecError, load_encoder

__all__ = [
    "DEFAULT_ENCODER",
    "Encoder",
    "EncoderFingerprint",
    "EncoderSpecError",
    "FingerprintMismatchError",
    "load_encoder",
]
