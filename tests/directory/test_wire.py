"""The lean search-response decoder agrees with ldap3 and with the BER it is given."""

from __future__ import annotations

import ldap3
import pytest

from iacs.directory import wire

from .factories import a_request, a_user_group, an_organization, so_of


def ber(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def octets(value: bytes) -> bytes:
    return ber(0x04, value)


def test_entry_with_short_and_long_values_and_a_paged_cookie():
    big = "ü".encode() * 40000  # 80,000 bytes: a three-byte long-form length
    attributes = ber(
        0x30,
        ber(0x30, octets(b"cn") + ber(0x31, octets(b"one") + octets(b"x" * 200)))
        + ber(0x30, octets(b"description") + ber(0x31, octets(big))),
    )
    entry = ber(0x30, ber(0x02, b"\x07") + ber(0x64, octets(b"cn=one,dc=example") + attributes))
    message_id, tag, start, end, cookie = wire.decode_message(entry)
    assert (message_id, tag, cookie) == (7, 0x64, b"")
    assert wire.decode_entry(entry, start, end) == (
        "cn=one,dc=example",
        {"cn": [b"one", b"x" * 200], "description": [big]},
    )

    control_value = ber(0x30, ber(0x02, b"\x00") + octets(b"\x01\x02cookie"))
    control = ber(0x30, octets(wire.PAGED_RESULTS_OID.encode()) + octets(control_value))
    done = ber(
        0x30,
        ber(0x02, b"\x07")
        + ber(0x65, ber(0x0A, b"\x00") + octets(b"") + octets(b""))
        + ber(0xA0, control),
    )
    assert wire.decode_message(done)[1::3] == (0x65, b"\x01\x02cookie")


@pytest.mark.servers
def test_the_lean_path_reads_what_ldap3_reads(directory, make_person, ldap_connect):
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    directory.create_user_group(a_user_group(org))
    directory.add_member(so_of(org), "alice")
    directory.add_request(a_request(details={"long": "z" * 5000}))
    connection = ldap_connect()
    base = directory.tree.base
    connection.search(base, "(objectClass=*)", attributes=["*", "memberOf"])
    expected = {
        item["dn"]: {
            name: list(values) for name, values in item["raw_attributes"].items() if values
        }
        for item in connection.response
    }
    found: dict[str, dict[str, list[bytes]]] = {}
    page = wire.search_page(
        connection,
        base,
        "(objectClass=*)",
        scope=ldap3.SUBTREE,
        attributes=["*", "memberOf"],
        size_limit=0,
        page_size=3,
        cookie=b"",
        on_entry=lambda dn, raw: found.setdefault(dn, dict(raw)),
    )
    assert page.code == 0 and page.cookie  # the first page of several
    assert len(found) == 3
    for dn in found:
        assert found[dn] == expected[dn], dn
    assert directory.get_request(directory.find_requests()[0].id).details == {"long": "z" * 5000}
