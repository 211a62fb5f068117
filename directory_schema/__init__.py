"""The OpenLDAP schema (``iacs.schema``) and the bootstrap LDIF of the IACS tree.

One copy of each artefact: the launcher of the tests and the dev stack, and a container
entrypoint, all use the files in this package through the functions below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_HERE = Path(__file__).resolve().parent

SERVICE_ACCOUNTS = ("portal", "sync", "keycloak")
"""The service bind accounts under ``ou=services`` (``cn=<name>``)."""

_BASE_RDN = re.compile(r"^(?P<type>dc|o|ou)=(?P<value>[A-Za-z0-9][A-Za-z0-9 .-]*)(,|$)", re.I)
_BASE_OBJECT = {
    "dc": "objectClass: dcObject\nobjectClass: organization\ndc: {value}\no: {value}",
    "o": "objectClass: organization\no: {value}",
    "ou": "objectClass: organizationalUnit\nou: {value}",
}


def schema_path() -> Path:
    """The project's schema file, in slapd.conf ``include`` format."""
    return _HERE / "iacs.schema"


def bootstrap_template_path() -> Path:
    """The bootstrap LDIF template (placeholders in double braces; see ``render_bootstrap``)."""
    return _HERE / "bootstrap.ldif"


def render_bootstrap(base_dn: str, password_hashes: Mapping[str, str]) -> str:
    """The bootstrap LDIF for ``base_dn``, with the service accounts' hashed passwords.

    ``password_hashes`` maps each name of ``SERVICE_ACCOUNTS`` to a ``userPassword`` value that
    is already hashed (``{SSHA}...``): clear text never reaches the LDIF. The base DN's first
    RDN must be ``dc=``, ``o=`` or ``ou=`` with a plain value.
    """
    match = _BASE_RDN.match(base_dn)
    if match is None:
        raise ValueError(f"unsupported base DN {base_dn!r}: the first RDN must be dc=, o= or ou=")
    missing = [name for name in SERVICE_ACCOUNTS if not password_hashes.get(name)]
    if missing:
        raise ValueError(f"missing password hashes for: {', '.join(missing)}")
    for name in SERVICE_ACCOUNTS:
        if not password_hashes[name].startswith("{"):
            raise ValueError(f"the password of {name} must be hashed ({{SSHA}}...), not clear text")
    values = {
        "base_dn": base_dn,
        "base_entry": _BASE_OBJECT[match["type"].lower()].format(value=match["value"]),
        **{f"{name}_password_hash": password_hashes[name] for name in SERVICE_ACCOUNTS},
    }
    text = bootstrap_template_path().read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.search(r"\{\{[^}]*\}\}", text)
    if leftover:
        raise ValueError(f"unfilled placeholder {leftover.group(0)} in the bootstrap LDIF")
    return text
