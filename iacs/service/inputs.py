"""Validation of everything a person types, before anything reaches the policy or the directory.

Refusing here is cheaper and clearer than escaping later (the directory layer escapes anyway):
names are bounded, printable and free of markup; ids match the id alphabet; numbers are digits.
"""

from __future__ import annotations

import re
import unicodedata

from iacs.domain import ProviderType, is_valid_id, normalize_identifier
from iacs.service.errors import InvalidInput

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""Matched with ``fullmatch`` only: ``^...$`` with ``match`` lets "eve\\n" through."""
_MARKUP = re.compile(r"[<>\"`]")


def text(field: str, value: object, *, max_length: int = 120, required: bool = True) -> str:
    """A single line of printable text without markup characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    value = unicodedata.normalize("NFC", value).strip()
    if required and not value:
        raise InvalidInput(field, "is required")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise InvalidInput(field, "must not contain control characters")
    if _MARKUP.search(value):
        raise InvalidInput(field, 'must not contain < > " or ` characters')
    return value


def identifier(field: str, value: object) -> str:
    """A TIN/EIN (9 digits) or NPI (10 digits); dashes and spaces are allowed and dropped."""
    raw = text(field, value, max_length=20)
    if re.search(r"[^0-9\s-]", raw):
        raise InvalidInput(field, "must contain digits only (dashes and spaces are ignored)")
    digits = normalize_identifier(raw)
    if len(digits) not in (9, 10):
        raise InvalidInput(field, "must be a 9-digit TIN/EIN or a 10-digit NPI")
    return digits


def npi(field: str, value: object) -> str:
    digits = identifier(field, value)
    if len(digits) != 10:
        raise InvalidInput(field, "must be a 10-digit NPI")
    return digits


def entity_id(field: str, value: object) -> str:
    """An id of an organization, group, surrogate group or request as it appears in URLs."""
    if not isinstance(value, str) or not is_valid_id(value):
        raise InvalidInput(field, "is not a valid id")
    return value


def request_id(field: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{32}", value):
        raise InvalidInput(field, "is not a valid request id")
    return value


def username(field: str, value: object) -> str:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        raise InvalidInput(field, "is not a valid username")
    return value


def provider_type(field: str, value: object) -> str:
    """Known provider types pass; the policy decides whether the type is blocked (ORG-7)."""
    raw = text(field, value, max_length=60)
    valid = {p.value for p in ProviderType}
    if raw not in valid:
        raise InvalidInput(field, f"must be one of {', '.join(sorted(valid))}")
    return raw


def reason(field: str, value: object, *, required: bool) -> str:
    return text(field, value, max_length=500, required=required)
