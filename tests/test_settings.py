"""Typed settings: validated at start with a message naming each bad field."""

from __future__ import annotations

import pytest

from iacs.settings import (
    LdapSettings,
    PortalSettings,
    Settings,
    SettingsError,
    known_environment_variables,
    ldap_transport_problems,
    load_settings,
    settings_to_env,
)
from keycloak_config.apply import placeholders_from_settings


def test_defaults_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IACS_ENVIRONMENT", "development")  # the defaults are the dev stack's
    settings = load_settings()
    assert settings.keycloak.issuer.endswith("/realms/iacs")


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IACS_ENVIRONMENT", "development")
    monkeypatch.setenv("IACS_KEYCLOAK__REALM", "cms")
    monkeypatch.setenv("IACS_SYNC__POLL_INTERVAL_SECONDS", "0.5")
    settings = load_settings()
    assert settings.keycloak.realm == "cms"
    assert settings.sync.poll_interval_seconds == 0.5


def test_invalid_settings_name_every_bad_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IACS_LDAP__URL", "http://not-ldap")
    monkeypatch.setenv("IACS_PORTAL__SECRET_KEY", "short")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "IACS_LDAP__URL" in message and "IACS_PORTAL__SECRET_KEY" in message


def test_unknown_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IACS_LDAP__URLL", "ldap://typo")
    with pytest.raises(SettingsError):
        load_settings()


def test_known_variables_cover_every_field() -> None:
    assert "IACS_LDAP__BASE_DN" in known_environment_variables()
    assert "IACS_PORTAL__SECRET_KEY" in known_environment_variables()


def test_settings_to_env_carries_the_environment_and_the_session_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``iacs dev`` hands its portal process reproduces its settings there."""
    settings = Settings(
        environment="development",
        portal=PortalSettings(session_store_url="redis://:pw@127.0.0.1:6390/0"),
    )
    env = settings_to_env(settings)
    assert env["IACS_ENVIRONMENT"] == "development"
    assert env["IACS_PORTAL__SESSION_STORE_URL"] == "redis://:pw@127.0.0.1:6390/0"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    again = load_settings()
    assert again.environment == "development"
    assert again.portal.session_store_url.get_secret_value() == "redis://:pw@127.0.0.1:6390/0"
    assert {"IACS_ENVIRONMENT", "IACS_PORTAL__SESSION_STORE_URL"} <= known_environment_variables()


def test_a_session_store_that_is_not_redis_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IACS_PORTAL__SESSION_STORE_URL", "memory://")
    with pytest.raises(SettingsError, match="IACS_PORTAL__SESSION_STORE_URL"):
        load_settings()


def test_sec_second_factor_can_be_turned_off_only_in_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IACS_PORTAL__SECOND_FACTOR_REQUIRED", "false")
    monkeypatch.setenv("IACS_ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="IACS_PORTAL__SECOND_FACTOR_REQUIRED"):
        load_settings()
    monkeypatch.setenv("IACS_ENVIRONMENT", "development")
    assert load_settings().portal.second_factor_required is False


def test_ldap_url_is_a_failover_list_and_writes_name_one_provider() -> None:
    """Replicated providers: IACS_LDAP__URL lists them in order, IACS_LDAP__WRITE_URL is one."""
    ldap = LdapSettings(url="ldaps://d1:636  ldaps://d2:636", write_url="ldaps://d1:636")
    assert ldap.urls == ["ldaps://d1:636", "ldaps://d2:636"]
    assert ldap.url == "ldaps://d1:636 ldaps://d2:636"
    with pytest.raises(ValueError, match="exactly one URL"):
        LdapSettings(write_url="ldaps://d1:636 ldaps://d2:636")
    with pytest.raises(ValueError, match="must start with"):
        LdapSettings(url="ldaps://d1:636 http://d2")
    with pytest.raises(ValueError, match="at least one"):
        LdapSettings(url="   ")


def test_production_refuses_plain_ldap_anywhere_in_the_list() -> None:
    settings = Settings(
        environment="development",
        ldap=LdapSettings(url="ldaps://d1:636 ldap://d2:389"),
    )
    production = settings.model_copy(update={"environment": "production"})
    assert any("plain ldap://" in problem for problem in ldap_transport_problems(production))


def test_keycloak_federation_lists_the_designated_provider_first() -> None:
    """Keycloak writes people (registration): to the provider every other write goes to."""
    settings = Settings(
        environment="development",
        ldap=LdapSettings(url="ldaps://d2:636 ldaps://d1:636", write_url="ldaps://d1:636"),
    )
    assert placeholders_from_settings(settings)["LDAP_URL"] == "ldaps://d1:636 ldaps://d2:636"
