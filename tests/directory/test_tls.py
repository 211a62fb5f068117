"""LDAP over verified TLS only; plain LDAP refused in production (issue 13 item 9)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import ssl
import threading

import pytest

from iacs.directory import Directory, DirectoryUnavailable
from iacs.settings import SettingsError, load_settings
from iacs.stack.tls import ensure_ca, ensure_server_tls

pytestmark = pytest.mark.servers


def test_sec_a_directory_with_a_certificate_from_another_ca_is_refused(
    slapd, ldap_settings, tmp_path
):
    """A man in the middle with a certificate of its own CA: the client refuses to talk."""
    other_ca, _ = ensure_ca(tmp_path / "other", name="Somebody else's CA")
    impostor_view = ldap_settings.model_copy(update={"ca_file": other_ca, "timeout_seconds": 2})
    with Directory(impostor_view, "sync") as directory:
        assert not directory.ping()
        with pytest.raises(DirectoryUnavailable, match="certificate verify failed"):
            directory.get_person("alice")
    with Directory(ldap_settings, "sync") as directory:  # the right CA: fine
        assert directory.ping()


def test_sec_a_certificate_for_another_host_is_refused(slapd, ldap_settings, tmp_path):
    """The CA is right but the certificate names another host: the client refuses it.

    A TLS listener on 127.0.0.1 presents a certificate from the session's own CA for
    ``directory.example`` only; the client asked for 127.0.0.1.
    """
    for name in ("ca.pem", "ca.key"):
        shutil.copy(slapd.ca_file.parent / name, tmp_path / name)
    tls = ensure_server_tls(tmp_path, names=("directory.example",), loopback=False)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    handshakes: list[str] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with (
                contextlib.suppress(ssl.SSLError, OSError),
                context.wrap_socket(connection, server_side=True) as wrapped,
            ):
                handshakes.append(wrapped.version() or "")
                wrapped.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"ldaps://127.0.0.1:{listener.getsockname()[1]}"
    elsewhere = ldap_settings.model_copy(update={"url": url, "timeout_seconds": 2})
    try:
        with Directory(elsewhere, "sync") as directory, pytest.raises(DirectoryUnavailable) as e:
            directory.get_person("alice")
    finally:
        listener.close()
        thread.join(timeout=10)
    assert handshakes, "the client never reached the TLS handshake"
    assert "match" in str(e.value) or "certificate" in str(e.value), e.value


def test_sec_plain_ldap_is_refused_by_the_directory(slapd, ldap_settings):
    """slapd listens on ldaps only: a clear-text client gets nowhere (no password is sent)."""
    plain = ldap_settings.model_copy(
        update={"url": ldap_settings.url.replace("ldaps://", "ldap://"), "timeout_seconds": 2}
    )
    with Directory(plain, "sync") as directory:
        assert not directory.ping()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IACS_LDAP__URL": "ldap://directory:389"}, "IACS_LDAP__URL"),
        ({"IACS_LDAP__URL": "ldaps://directory:636"}, "IACS_LDAP__CA_FILE"),
        (
            {"IACS_LDAP__URL": "ldaps://directory:636", "IACS_LDAP__CA_FILE": "/nonexistent.pem"},
            "IACS_LDAP__CA_FILE",
        ),
    ],
)
def test_sec_plain_or_unverified_ldap_settings_are_refused_in_production(monkeypatch, env, named):
    monkeypatch.setenv("IACS_ENVIRONMENT", "production")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert named in str(refused.value)


def test_verified_ldaps_settings_start_in_production_and_plain_ldap_only_in_development(
    slapd, monkeypatch
):
    for key, value in slapd.settings_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("IACS_ENVIRONMENT", "production")
    for account in ("PORTAL", "SYNC", "KEYCLOAK"):  # production refuses the published dev values
        monkeypatch.setenv(f"IACS_LDAP__{account}_BIND_PASSWORD", secrets.token_urlsafe(24))
    settings = load_settings()
    assert settings.ldap.url.startswith("ldaps://") and settings.ldap.ca_file == slapd.ca_file
    monkeypatch.setenv("IACS_ENVIRONMENT", "development")
    monkeypatch.setenv("IACS_LDAP__URL", "ldap://127.0.0.1:3389")
    assert load_settings().ldap.url == "ldap://127.0.0.1:3389"
