"""Typed settings for every process of the system, read from the environment and validated at start.

One model serves the portal, the sync worker and the CLI so that a deployment configures each
value once. Environment variables use the ``IACS_`` prefix and ``__`` for nesting, for example
``IACS_LDAP__URL`` or ``IACS_KEYCLOAK__REALM``. An optional file named by ``IACS_SETTINGS_FILE``
(``KEY=value`` lines) is read first; the environment wins over it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DN = Annotated[str, Field(min_length=3, pattern=r"^[A-Za-z][\w-]*=.+")]


class _Section(BaseModel):
    """A settings section: a misspelt variable is an error, not a silently ignored value."""

    model_config = ConfigDict(extra="forbid")


class LdapSettings(_Section):
    """Where the directory is and how each process binds to it."""

    url: str = "ldap://127.0.0.1:3389"
    """LDAP URL of slapd (``ldap://`` or ``ldaps://``)."""
    base_dn: DN = "dc=iacs,dc=example"
    """Suffix of the IACS tree."""
    accesslog_dn: DN = "cn=accesslog"
    """Suffix of the accesslog database that the sync worker follows."""
    portal_bind_dn: DN = "cn=portal,ou=services,dc=iacs,dc=example"
    """Service account of the approval portal: writes requests, memberships and audit."""
    portal_bind_password: SecretStr = SecretStr("portal-dev-secret")
    """Password of the portal's service account."""
    sync_bind_dn: DN = "cn=sync,ou=services,dc=iacs,dc=example"
    """Service account of the sync worker: reads the tree and the change feed."""
    sync_bind_password: SecretStr = SecretStr("sync-dev-secret")
    """Password of the sync worker's service account."""
    keycloak_bind_dn: DN = "cn=keycloak,ou=services,dc=iacs,dc=example"
    """Service account Keycloak's user federation binds with: writes people only."""
    keycloak_bind_password: SecretStr = SecretStr("keycloak-dev-secret")
    """Password of Keycloak's federation account."""
    root_password: SecretStr | None = None
    """Password of the directory's root DN; only the directory server and its bootstrap use it."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    """Connect and receive timeout for every LDAP operation."""

    @field_validator("url")
    @classmethod
    def _ldap_scheme(cls, value: str) -> str:
        if not value.startswith(("ldap://", "ldaps://", "ldapi://")):
            raise ValueError("must start with ldap://, ldaps:// or ldapi://")
        return value


class KeycloakSettings(_Section):
    """Where Keycloak is and the realm the system manages."""

    url: str = "http://127.0.0.1:8080"
    """Base URL of Keycloak (no trailing /auth on Keycloak 17+)."""
    realm: str = Field(default="iacs", pattern=r"^[a-z][a-z0-9-]{1,40}$")
    """The realm that holds the people, groups and application clients."""
    admin_username: str = "admin"
    """Bootstrap administrator of the master realm (used by ``iacs keycloak apply``)."""
    admin_password: SecretStr = SecretStr("admin-dev-secret")
    """Password of the bootstrap administrator."""
    sync_client_id: str = "iacs-sync"
    """Confidential client whose service account the sync worker uses, with narrow rights."""
    sync_client_secret: SecretStr = SecretStr("sync-client-dev-secret")
    """Secret of the sync worker's client."""
    portal_client_id: str = "iacs-portal"
    """The portal's own OIDC client."""
    portal_client_secret: SecretStr = SecretStr("portal-client-dev-secret")
    """Secret of the portal's OIDC client."""
    public_url: str | None = None
    """URL browsers use for Keycloak when it differs from ``url`` (behind a proxy)."""

    @property
    def issuer(self) -> str:
        """The ``iss`` every token of the realm must carry."""
        return f"{(self.public_url or self.url).rstrip('/')}/realms/{self.realm}"


class PortalSettings(_Section):
    """The Flask approval portal."""

    secret_key: SecretStr = SecretStr("dev-only-change-me-0123456789abcdef")
    """Signs the session cookie and CSRF tokens; at least 32 characters."""
    public_url: str = "http://127.0.0.1:5000"
    """URL at which browsers reach the portal (used for the OIDC redirect URI)."""
    session_cookie_secure: bool = True
    """Send the session cookie over HTTPS only. Only a local dev stack on http turns it off."""
    request_ttl_days: int = Field(default=30, ge=1, le=365)
    """LC-2: a pending request expires after this many days."""
    recertification_days: int = Field(default=365, ge=1, le=3650)
    """LC-3: every role must be recertified within this many days or it lapses."""
    enrollment_file: Path | None = None
    """IND-1: CSV of Medicare enrollments (npi,name,enrolled_on); None uses the bundled sample."""
    blocked_provider_types: list[str] = Field(default_factory=lambda: ["dmepos"])
    """ORG-7: provider types that may not register at this time."""
    sync_nudge_url: str | None = None
    """Optional URL of the sync worker's nudge endpoint, called after each decision."""

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value


class SyncSettings(_Section):
    """The sync worker."""

    poll_interval_seconds: float = Field(default=0.2, gt=0, le=60)
    """How often the change feed is polled."""
    reconcile_interval_seconds: float = Field(default=900, ge=10)
    """How often a full reconcile runs besides the change feed."""
    cursor_file: Path = Path("var/sync-cursor.json")
    """Where the durable change-feed cursor is kept."""
    listen: str = "127.0.0.1:9108"
    """host:port of the health, metrics and nudge endpoint."""
    catalogue_file: Path | None = None
    """Application catalogue; None uses ``keycloak_config/catalogue.yaml``."""


class Settings(BaseSettings):
    """All settings; see each section for its fields."""

    model_config = SettingsConfigDict(
        env_prefix="IACS_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    ldap: LdapSettings = LdapSettings()
    keycloak: KeycloakSettings = KeycloakSettings()
    portal: PortalSettings = PortalSettings()
    sync: SyncSettings = SyncSettings()


class SettingsError(SystemExit):
    """Raised at start when the settings are invalid; the message names each bad field."""


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings, or stop with a message naming every invalid field."""
    env_file = os.environ.get("IACS_SETTINGS_FILE")
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = ["invalid settings:"]
        for error in exc.errors():
            path = "__".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  IACS_{path}: {error['msg']}")
        raise SettingsError("\n".join(lines)) from None


def known_environment_variables() -> set[str]:
    """Every ``IACS_*`` variable the settings understand (docker-compose is checked against it)."""
    names = {"IACS_SETTINGS_FILE"}
    for section, field in Settings.model_fields.items():
        model = field.annotation
        for sub in model.model_fields:  # type: ignore[union-attr]
            names.add(f"IACS_{section.upper()}__{sub.upper()}")
    return names


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The ``IACS_*`` variables that reproduce ``settings`` in another process, secrets too."""
    import json

    env: dict[str, str] = {}
    for section_name in Settings.model_fields:
        section = getattr(settings, section_name)
        for field_name in type(section).model_fields:
            value = getattr(section, field_name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, list | dict):
                value = json.dumps(value)
            env[f"IACS_{section_name.upper()}__{field_name.upper()}"] = str(value)
    return env
