"""API keys with scopes: `Authorization: Bearer <secret>`.

Keys come from `CASEMATCH_API_KEYS` as comma-separated `<name>:<secret>:<scopes>`, scopes
`+`-joined from `route`, `ingest`, `admin` (e.g. `platform:s3cret:route+ingest`). A missing or
unknown key is 401, a known key without the scope 403. Secrets are compared in constant time
and only ever leave this module as the key's name (for logs and rate limits).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal, get_args

Scope = Literal["route", "ingest", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
MIN_SECRET_LENGTH = 16


class ApiKeyConfigError(ValueError):
    """CASEMATCH_API_KEYS cannot be parsed (the message never contains a secret)."""


class AuthError(Exception):
    def __init__(self, status: Literal[401, 403], detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    secret: str
    scopes: frozenset[Scope]

    def __repr__(self) -> str:  # never print the secret
        return f"ApiKey(name={self.name!r}, scopes={sorted(self.scopes)})"


def parse_api_keys(value: str) -> tuple[ApiKey, ...]:
    keys: list[ApiKey] = []
    for number, entry in enumerate((e.strip() for e in value.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 3 or not all(parts):
            raise ApiKeyConfigError(f"CASEMATCH_API_KEYS entry {number} is not <name>:<secret>:<scopes>")
        name, secret, scope_list = parts
        if len(secret) < MIN_SECRET_LENGTH:
            raise ApiKeyConfigError(
                f"the secret of key {name!r} is shorter than {MIN_SECRET_LENGTH} characters"
            )
        scopes = scope_list.split("+")
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise ApiKeyConfigError(f"key {name!r} has unknown scopes {unknown}; known: {list(SCOPES)}")
        if any(k.name == name for k in keys):
            raise ApiKeyConfigError(f"key name {name!r} appears twice")
        keys.append(ApiKey(name, secret, frozenset(s for s in SCOPES if s in scopes)))
    return tuple(keys)


class Authenticator:
    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = keys

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authorize(self, authorization: str | None, scope: Scope) -> ApiKey:
        """The key behind an Authorization header, if it carries `scope`; AuthError otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "send `Authorization: Bearer <api key>`")
        key = self._match(token.strip())
        if key is None:
            raise AuthError(401, "unknown API key")
        if scope not in key.scopes:
            raise AuthError(403, f"API key {key.name!r} lacks the {scope!r} scope")
        return key

    def _match(self, token: str) -> ApiKey | None:
        # compare against every key, so timing reveals neither which key nor how much matched
        found = None
        for key in self._keys:
            if hmac.compare_digest(key.secret.encode(), token.encode()):
                found = key
        return found
