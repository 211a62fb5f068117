"""A lean read path for paged searches: ldap3 sends the request, we decode the responses.

ldap3 decodes every search result entry twice (raw bytes and a formatted copy, with a config
lookup per value), which costs about a millisecond of CPU per entry; the snapshot of 10,000
people spends most of its time there. Search responses are simple BER, so this module reads
them directly: a SearchResultEntry becomes ``(dn, {attribute: [raw bytes, ...]})``, a
SearchResultDone gives the result code, message and paged-results cookie. The request itself
is still built and sent by ldap3 on the pooled connection (``strategy.send``), and bytes are
still received by ldap3 (``strategy.receiving``), so TLS and timeouts behave as for any other
operation. Only what slapd sends for a search is understood; anything else is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import ldap3
from ldap3.core.exceptions import LDAPSessionTerminatedByServerError, LDAPSocketReceiveError
from ldap3.operation.search import search_operation
from ldap3.protocol.rfc2696 import paged_search_control

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"

_SEQUENCE = 0x30
_SEARCH_RESULT_ENTRY = 0x64  # [APPLICATION 4] constructed
_SEARCH_RESULT_DONE = 0x65  # [APPLICATION 5] constructed
_SEARCH_RESULT_REFERENCE = 0x73  # [APPLICATION 19] constructed
_EXTENDED_RESPONSE = 0x78  # [APPLICATION 24] constructed (notice of disconnection)
_CONTROLS = 0xA0  # [0] constructed

OnEntry = Callable[[str, Mapping[str, Sequence[bytes]]], None]


@dataclass(frozen=True, slots=True)
class PageResult:
    """The SearchResultDone of one page."""

    code: int
    message: str
    cookie: bytes


def _element(data: bytes, pos: int) -> tuple[int, int, int]:
    """``(tag, content start, content end)`` of the BER element at ``pos`` (one-byte tags)."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise LDAPSocketReceiveError("truncated LDAP message")
    return tag, pos, end


def _integer(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big", signed=True)


def decode_entry(data: bytes, start: int, end: int) -> tuple[str, dict[str, list[bytes]]]:
    """A SearchResultEntry's content: the DN and every attribute's raw values."""
    _, dn_start, dn_end = _element(data, start)
    _, position, attributes_end = _element(data, dn_end)
    attributes: dict[str, list[bytes]] = {}
    while position < attributes_end:
        _, partial_start, partial_end = _element(data, position)
        _, type_start, type_end = _element(data, partial_start)
        _, cursor, values_end = _element(data, type_end)
        values = []
        while cursor < values_end:
            length = data[cursor + 1]
            if length < 0x80:  # short form: nearly every value (hot loop, kept inline)
                cursor += 2 + length
                values.append(data[cursor - length : cursor])
            else:
                _, value_start, cursor = _element(data, cursor)
                values.append(data[value_start:cursor])
        if cursor != values_end:
            raise LDAPSocketReceiveError("malformed attribute values in a search entry")
        attributes[data[type_start:type_end].decode("utf-8")] = values
        position = partial_end
    return data[dn_start:dn_end].decode("utf-8"), attributes


def _paged_cookie(data: bytes, start: int, end: int) -> bytes:
    """The cookie of the paged-results control among the controls in ``data[start:end]``."""
    position = start
    while position < end:
        _, control_start, control_end = _element(data, position)
        _, oid_start, oid_end = _element(data, control_start)
        if data[oid_start:oid_end] == PAGED_RESULTS_OID.encode():
            cursor = oid_end
            while cursor < control_end:
                tag, value_start, value_end = _element(data, cursor)
                if tag == 0x04:  # controlValue: SEQUENCE { size INTEGER, cookie OCTET STRING }
                    _, inner_start, _inner_end = _element(data, value_start)
                    _, _, size_end = _element(data, inner_start)
                    _, cookie_start, cookie_end = _element(data, size_end)
                    return data[cookie_start:cookie_end]
                cursor = value_end
        position = control_end
    return b""


def decode_message(data: bytes) -> tuple[int, int, int, int, bytes]:
    """``(message id, operation tag, content start, content end, paged cookie)``."""
    _, start, end = _element(data, 0)
    _, id_start, id_end = _element(data, start)
    tag, op_start, op_end = _element(data, id_end)
    cookie = b""
    if op_end < end:
        controls_tag, controls_start, controls_end = _element(data, op_end)
        if controls_tag == _CONTROLS:
            cookie = _paged_cookie(data, controls_start, controls_end)
    return _integer(data, id_start, id_end), tag, op_start, op_end, cookie


def search_page(
    connection: ldap3.Connection,
    base: str,
    search_filter: str,
    *,
    scope: str,
    attributes: Iterable[str],
    size_limit: int,
    page_size: int | None,
    cookie: bytes,
    on_entry: OnEntry,
) -> PageResult:
    """Send one (paged) search on ``connection`` and feed each entry to ``on_entry``."""
    request = search_operation(
        base,
        search_filter,
        scope,
        ldap3.DEREF_NEVER,
        list(attributes) or ["1.1"],
        size_limit,
        0,
        False,
        connection.auto_escape,
        connection.auto_encode,
        None,
        None,
        check_names=False,
    )
    controls = [paged_search_control(False, page_size, cookie)] if page_size else None
    strategy = connection.strategy
    message_id = strategy.send("searchRequest", request, controls)
    strategy._outstanding.pop(message_id, None)  # this module collects the response itself
    while True:
        messages = strategy.receiving()
        if not messages:
            raise LDAPSessionTerminatedByServerError("the server closed the connection")
        for data in messages:
            received_id, tag, start, end, page_cookie = decode_message(data)
            if tag == _EXTENDED_RESPONSE and received_id == 0:
                raise LDAPSessionTerminatedByServerError("notice of disconnection")
            if received_id != message_id:
                continue
            if tag == _SEARCH_RESULT_ENTRY:
                on_entry(*decode_entry(data, start, end))
            elif tag == _SEARCH_RESULT_DONE:
                _, code_start, code_end = _element(data, start)
                _, _, matched_end = _element(data, code_end)
                _, text_start, text_end = _element(data, matched_end)
                return PageResult(
                    code=_integer(data, code_start, code_end),
                    message=data[text_start:text_end].decode("utf-8", errors="replace"),
                    cookie=page_cookie,
                )
            elif tag != _SEARCH_RESULT_REFERENCE:
                raise LDAPSocketReceiveError(f"unexpected LDAP response tag {tag:#x} to a search")
