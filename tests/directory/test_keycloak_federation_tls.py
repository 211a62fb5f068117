"""Keycloak's LDAP federation speaks verified ldaps to the directory (issue 13 item 9).

Through Keycloak's own "test connection" admin endpoint, with the federation settings of the
realm as code (``useTruststoreSpi: always``): the session slapd, whose CA Keycloak was started
with (``--truststore-paths``), is accepted; a listener whose certificate comes from another CA
is refused by Keycloak before it sends the bind password.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from keycloak.exceptions import KeycloakError

from iacs.settings import Settings
from iacs.stack.tls import ensure_server_tls
from keycloak_config.apply import load_realm_definition

pytestmark = pytest.mark.servers


def federation_settings(settings) -> dict[str, str]:
    """The LDAP component's connection settings as the realm as code defines them."""
    definition = load_realm_definition(settings, with_federation=True)
    component = definition["components"]["org.keycloak.storage.UserStorageProvider"][0]
    return {key: values[0] for key, values in component["config"].items() if values}


@contextlib.contextmanager
def impostor_listener(tmp_path) -> Iterator[tuple[int, list[bytes]]]:
    """A TLS listener on 127.0.0.1 with a certificate from a CA Keycloak does not trust;
    what it receives after a handshake (a bind with the password) is recorded."""
    tls = ensure_server_tls(tmp_path / "impostor")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with (
                contextlib.suppress(ssl.SSLError, OSError),
                context.wrap_socket(connection, server_side=True) as wrapped,
            ):
                wrapped.settimeout(5)
                received.append(wrapped.recv(4096))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        listener.close()
        thread.join(timeout=10)


def test_sec_keycloak_federation_verifies_the_directory_certificate(
    slapd, keycloak_admin_factory, tmp_path
):
    settings = Settings(ldap=slapd.ldap_settings())
    config = federation_settings(settings)
    assert config["connectionUrl"].startswith("ldaps://")
    assert config["useTruststoreSpi"] == "always" and config["startTls"] == "false"
    admin = keycloak_admin_factory()

    def test_connection(url: str) -> int:
        payload = {
            "action": "testAuthentication",
            "connectionUrl": url,
            "authType": "simple",
            "bindDn": config["bindDn"],
            "bindCredential": config["bindCredential"],
            "useTruststoreSpi": config["useTruststoreSpi"],
            "startTls": config["startTls"],
            "connectionTimeout": "5000",
        }
        try:
            response = admin.connection.raw_post(
                "admin/realms/master/testLDAPConnection", data=json.dumps(payload)
            )
        except KeycloakError as exc:
            return exc.response_code or 0
        return response.status_code

    assert test_connection(config["connectionUrl"]) == 204
    with impostor_listener(tmp_path) as (port, received):
        assert test_connection(f"ldaps://127.0.0.1:{port}") == 400
    assert received == [], "Keycloak sent LDAP traffic to a server it should not trust"
