"""Search filters built from parts, with every value escaped (RFC 4515).

Nothing else in the package writes a filter string by hand: a username like ``*)(uid=*`` is
always a literal value here, never filter syntax.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ldap3.utils.conv import escape_filter_chars

from iacs.directory.mapping import to_generalized_time


def value(text: str) -> str:
    """``text`` escaped for use as an assertion value."""
    return escape_filter_chars(text)


def eq(attribute: str, text: str) -> str:
    return f"({attribute}={value(text)})"


def contains(attribute: str, text: str) -> str:
    """A substring match for ``text`` anywhere in the value (``text`` itself is literal)."""
    return f"({attribute}=*{value(text)}*)"


def starts_with(attribute: str, text: str) -> str:
    """A prefix match for ``text`` (``text`` itself is literal)."""
    return f"({attribute}={value(text)}*)"


def present(attribute: str) -> str:
    return f"({attribute}=*)"


def at_least(attribute: str, moment: datetime) -> str:
    return f"({attribute}>={to_generalized_time(moment)})"


def at_most(attribute: str, moment: datetime) -> str:
    return f"({attribute}<={to_generalized_time(moment)})"


def all_of(*parts: str) -> str:
    kept = [part for part in parts if part]
    if len(kept) == 1:
        return kept[0]
    return f"(&{''.join(kept)})"


def any_of(parts: Iterable[str]) -> str:
    kept = [part for part in parts if part]
    if not kept:
        return "(!(objectClass=*))"
    if len(kept) == 1:
        return kept[0]
    return f"(|{''.join(kept)})"


def negate(part: str) -> str:
    return f"(!{part})"


def one_or_many(attribute: str, values: str | Iterable[str] | None) -> str:
    """Equality with one value, or with any of several; "" when ``values`` is None."""
    if values is None:
        return ""
    if isinstance(values, str):
        return eq(attribute, values)
    return any_of(eq(attribute, item) for item in values)
