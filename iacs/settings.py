"""Typed settings for every process of the system, read from the environment and validated at start.

One model serves the portal, the sync worker and the CLI so that a deployment configures each
value once. Environment variables use the ``IACS_`` prefix and ``__`` for nesting, for example
``IACS_LDAP__URL`` or ``IACS_KEYCLOAK__REALM``. An optional file named by ``IACS_SETTINGS_FILE``
(``KEY=value`` lines) is read first; the environment wins over it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DN = Annotated[str, Field(min_length=3, pattern=r"^[A-Za-z][\w-]*=.+")]


class _Section(BaseModel):
    """A settings section: a misspelt variable is an error, not a silently ignored value."""

    model_config = ConfigDict(extra="forbid")


class LdapSettings(_Section):
    """Where the directory is and how each process binds to it."""

    url: str = "ldap://127.0.0.1:3389"
    """LDAP URL of slapd: ``ldaps://`` in production (a plain ``ldap://`` is refused there).
    With replicated providers, their URLs separated by spaces, in the order this process
    prefers them: it uses the first that answers and fails over to the next (``urls``)."""
    write_url: str | None = None
    """With replicated providers: the one designated provider every write goes to (ORG-2's
    unique add, DEC-3's compare-and-swap and the sync worker's lease are only atomic on one
    provider; multi-provider replication resolves concurrent writes to two providers by
    keeping the later one, silently). Writes never fail over: while it is down they are
    refused as unavailable. Every process of one installation must name the same one.
    None: writes go where reads go (a single directory)."""
    ca_file: Path | None = None
    """PEM file of the CA that signed slapd's certificate; every ``ldaps://`` connection is
    verified against it (required in production). The launcher writes its test CA here."""
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
    replication_password: SecretStr | None = None
    """Password of the directory's replication account (``iacs directory serve --peer``): the
    same on every provider; only the directory servers use it."""
    root_password: SecretStr | None = None
    """Password of the directory's root DN; only the directory server and its bootstrap use it."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    """Connect and receive timeout for every LDAP operation."""

    @field_validator("url", "write_url")
    @classmethod
    def _ldap_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        urls = value.split()
        if not urls:
            raise ValueError("must name at least one LDAP URL")
        for url in urls:
            if not url.startswith(("ldap://", "ldaps://", "ldapi://")):
                raise ValueError(f"{url!r} must start with ldap://, ldaps:// or ldapi://")
        return " ".join(urls)

    @field_validator("write_url")
    @classmethod
    def _one_write_url(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 1:
            raise ValueError("must be exactly one URL: the designated provider")
        return value

    @property
    def urls(self) -> list[str]:
        """``url`` as a list: the providers in this process's order of preference."""
        return self.url.split()


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
    application_redirect_uris: dict[str, str] = Field(default_factory=dict)
    """Client id → OIDC redirect URI of each integrated application in the catalogue, as JSON.
    An application left out gets its local development address (the examples/ app)."""
    application_client_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    """Client id → client secret of each integrated application, as JSON; an application left
    out gets a secret generated by Keycloak at creation."""
    application_backchannel_logout_urls: dict[str, str] = Field(default_factory=dict)
    """Client id → OIDC Back-Channel Logout URL of each integrated application, as JSON, where
    Keycloak tells it at once that a person's session ended. An application left out whose
    redirect URI ends in ``/oidc/callback`` (the examples/ app's pattern) gets
    ``/oidc/backchannel-logout`` on the same origin; any other, none."""

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
    inactivity_days: int = Field(default=60, ge=1, le=3650)
    """INACT-1: an account with no sign-in for this many days is disabled (Keycloak's login events
    must be kept longer: ``eventsExpiration`` in the realm, 90 days)."""
    enrollment_file: Path | None = None
    """IND-1: CSV of Medicare enrollments (npi,name,enrolled_on); None uses the bundled sample."""
    blocked_provider_types: list[str] = Field(default_factory=lambda: ["dmepos"])
    """ORG-7: provider types that may not register at this time."""
    sync_nudge_url: str | None = None
    """Optional URL of the sync worker's nudge endpoint, called after each decision."""
    second_factor_required: bool = True
    """Refuse a sign-in or bearer token of a person who must pass a second factor and did not
    (``approval_portal.mfa``). Only a development stack may turn it off: the benchmarks' load
    generator signs officials in with the password grant."""
    session_store_url: SecretStr | None = None
    """``redis://:<password>@host:port/db`` (or ``rediss://``) of the Redis every portal process
    shares for sessions and rate limits; the portal refuses to start without it."""
    session_idle_timeout_seconds: int = Field(default=1800, ge=1, le=86400)
    """A session unused for this long ends (ASVS V7.3.1); each request renews it."""
    session_lifetime_seconds: int = Field(default=8 * 3600, ge=1, le=7 * 86400)
    """A session ends this long after sign-in however busy it is (ASVS V7.3.2)."""
    trusted_proxies: int = Field(default=0, ge=0, le=5)
    """How many reverse proxies in front of the portal set ``X-Forwarded-*``; 0 trusts none."""
    refused_attempts_per_minute: int = Field(default=30, ge=1, le=10000)
    """Refused (403/404) calls one person may make per minute before the portal answers 429."""

    @field_validator("session_store_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

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
    pending_logouts_file: Path | None = None
    """Where logouts owed after a revocation are kept until done (``sync.pending_logouts``);
    None: beside the cursor, ``<cursor>.logouts.json``."""
    listen: str = "127.0.0.1:9108"
    """host:port of the health, metrics and nudge endpoint (loopback unless a token is set)."""
    nudge_token: SecretStr | None = None
    """Bearer token that ``/nudge`` and ``/metrics`` require when set; the worker refuses to
    listen on a non-loopback address without one. The portal sends it with its nudge."""
    catalogue_file: Path | None = None
    """Application catalogue; None uses ``keycloak_config/catalogue.yaml``."""
    lease_duration_seconds: float = Field(default=10, ge=2, le=300)
    """How long the active worker's lease lasts unless renewed (``sync.lease``): a standby
    takes over at most this long after the active worker dies."""
    lease_renew_interval_seconds: float = Field(default=2, gt=0, le=150)
    """How often the active worker renews its lease; at most half the duration. It is also
    the margin by which a holder stops writing before its lease can pass to another."""
    lease_holder: str | None = Field(default=None, pattern=r"^\S{1,200}$")
    """This worker's id in the lease; None: host name, process id and a random part."""

    @model_validator(mode="after")
    def _renew_well_within_the_lease(self) -> SyncSettings:
        if self.lease_renew_interval_seconds * 2 > self.lease_duration_seconds:
            raise ValueError(
                "IACS_SYNC__LEASE_RENEW_INTERVAL_SECONDS must be at most half of "
                "IACS_SYNC__LEASE_DURATION_SECONDS"
            )
        return self


class MailSettings(_Section):
    """The SMTP relay notifications go through (``iacs.mailer``), and Keycloak's own e-mail.

    ``host`` unset: nothing is sent (notices wait in the directory's outbox until it is set).
    Outside development the relay needs STARTTLS, and a user name needs its password in a
    file (a mounted secret), never in the environment.
    """

    host: str | None = None
    """Host name of the SMTP relay (``IACS_MAIL__HOST``)."""
    port: int = Field(default=587, ge=1, le=65535)
    """Port of the relay: 587 (submission, STARTTLS) by default."""
    starttls: bool = True
    """Upgrade to TLS with STARTTLS before anything is sent; required outside development."""
    ca_file: Path | None = None
    """PEM file of the CA that signed the relay's certificate; None: the system's trust store."""
    username: str | None = None
    """User name for SMTP AUTH; None sends without authenticating."""
    password_file: Path | None = None
    """File holding the SMTP password (a compose or Kubernetes secret); needed with a user name."""
    from_address: str = Field(default="IACS <iacs@localhost>", min_length=3, max_length=256)
    """The sender of every notification and of Keycloak's mail (``Name <address>``)."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """Connect and answer timeout of one SMTP conversation."""
    max_attempts: int = Field(default=12, ge=1, le=100)
    """A notice the relay keeps refusing is marked failed after this many tries."""
    retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Backoff after the first failed try; it doubles with each try, up to ``retry_max_seconds``."""
    retry_max_seconds: float = Field(default=3600.0, gt=0, le=86400)
    """The longest wait between two tries of one notice."""

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        address = value.rsplit("<", 1)[-1].rstrip(">").strip()
        if "@" not in address or any(c in value for c in "\r\n"):
            raise ValueError("must be an e-mail address, optionally 'Name <address>'")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> MailSettings:
        if self.password_file is not None and not self.password_file.is_file():
            raise ValueError(f"IACS_MAIL__PASSWORD_FILE: {self.password_file} does not exist")
        if self.username and self.password_file is None:
            raise ValueError("IACS_MAIL__USERNAME needs IACS_MAIL__PASSWORD_FILE")
        return self

    def password(self) -> str | None:
        """The SMTP password, read from its file (whitespace at the ends dropped)."""
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip()


class ScheduleSettings(_Section):
    """What the sync worker runs by itself (``iacs.service.schedule``): LC-2, LC-3, reminders."""

    enabled: bool = True
    """Run the schedule in the worker; off, only ``iacs maintenance`` runs it."""
    interval_seconds: float = Field(default=3600.0, ge=1, le=7 * 86400)
    """How often expiry, lapses and reminders run."""
    reminder_days: list[int] = Field(default_factory=lambda: [30, 7])
    """LC-3: remind those who may certify a role this many days before it is due (JSON list)."""
    notify_interval_seconds: float = Field(default=5.0, ge=0.1, le=3600)
    """How often the outbox is filled from the audit record and its notices are sent."""

    @field_validator("reminder_days")
    @classmethod
    def _positive_days(cls, value: list[int]) -> list[int]:
        if any(day < 1 or day > 3650 for day in value):
            raise ValueError("each reminder is 1 to 3650 days before the due date")
        return sorted(set(value), reverse=True)


class Settings(BaseSettings):
    """All settings; see each section for its fields."""

    model_config = SettingsConfigDict(
        env_prefix="IACS_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    environment: Literal["production", "development"] = "production"
    """``development`` only for the local stack, the tests and the benchmarks: there the
    published development secrets are defaults. In ``production`` no secret has a default (an
    unset one fails where it is used, naming its variable) and a published development value
    is refused at start."""
    ldap: LdapSettings = LdapSettings()
    keycloak: KeycloakSettings = KeycloakSettings()
    portal: PortalSettings = PortalSettings()
    sync: SyncSettings = SyncSettings()
    mail: MailSettings = MailSettings()
    schedule: ScheduleSettings = ScheduleSettings()

    @model_validator(mode="after")
    def _fail_closed_outside_development(self) -> Settings:
        if self.environment == "development":
            return self
        if self.mail.host and "from_address" not in self.mail.model_fields_set:
            raise ValueError("IACS_MAIL__FROM_ADDRESS must be set with IACS_MAIL__HOST")
        if self.mail.host and not self.mail.starttls:
            raise ValueError(
                "IACS_MAIL__STARTTLS may be false only in the development stack: the relay "
                "would see the notifications and the SMTP password in clear text"
            )
        if not self.portal.second_factor_required:
            raise ValueError(
                "IACS_PORTAL__SECOND_FACTOR_REQUIRED may be false only in the development stack"
            )
        published = development_secret_values()
        refused = []
        for section_name, section in _sections(self):
            unset = {}
            for field_name, value in _secret_fields(section):
                variable = f"IACS_{section_name.upper()}__{field_name.upper()}"
                if isinstance(value, UnsetSecret):
                    continue
                if field_name not in section.model_fields_set:
                    # No default outside development: whoever uses it learns what to set.
                    unset[field_name] = UnsetSecret(variable)
                elif value.get_secret_value() in published:
                    refused.append(variable)
            if unset:  # a copy: a section passed in by the caller is never changed
                setattr(self, section_name, section.model_copy(update=unset))
        if refused:
            raise ValueError(
                "a published development secret is refused outside development: "
                + ", ".join(refused)
                + " (set a real secret, or IACS_ENVIRONMENT=development for a local stack)"
            )
        return self


class MissingSecret(RuntimeError):
    """A secret that has no default outside development was used without being set."""


class UnsetSecret(SecretStr):
    """A secret left unset outside development: reading it fails, naming the variable."""

    def __init__(self, variable: str) -> None:
        super().__init__("")
        self.variable = variable

    def get_secret_value(self) -> str:
        raise MissingSecret(f"{self.variable} must be set (no default outside development)")

    def __str__(self) -> str:
        return "(unset)"

    def __repr__(self) -> str:
        return f"UnsetSecret({self.variable!r})"

    def __len__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnsetSecret) and other.variable == self.variable

    def __hash__(self) -> int:
        return hash(self.variable)


def _sections(settings: Settings) -> list[tuple[str, BaseModel]]:
    return [
        (name, getattr(settings, name))
        for name in type(settings).model_fields
        if isinstance(getattr(settings, name), BaseModel)
    ]


def _secret_fields(section: BaseModel) -> list[tuple[str, SecretStr]]:
    return [
        (name, value)
        for name in type(section).model_fields
        if isinstance(value := getattr(section, name), SecretStr)
    ]


def development_secret_values() -> frozenset[str]:
    """Every secret this project publishes: the development defaults of every section.

    A deployment that copied one of them (into any setting) runs with a key the world knows.
    """
    values = set()
    for section in (LdapSettings, KeycloakSettings, PortalSettings, SyncSettings):
        for field in section.model_fields.values():
            if isinstance(field.default, SecretStr):
                values.add(field.default.get_secret_value())
    return frozenset(values)


def require_secrets(*secrets: SecretStr | None) -> None:
    """Read each secret now, so a process that needs an unset one fails at start, not later."""
    for secret in secrets:
        if secret is not None:
            secret.get_secret_value()


class SettingsError(SystemExit):
    """Raised at start when the settings are invalid; the message names each bad field."""


def ldap_transport_problems(settings: Settings) -> list[str]:
    """Why the directory connection of ``settings`` is not safe for production (empty: it is).

    Production talks to slapd over ``ldaps://`` only (``ldapi://``, a local socket, is also
    fine), verified against a CA file that exists. A development stack may use plain LDAP.
    """
    if settings.environment != "production":
        return []
    ldap = settings.ldap
    problems = []
    schemes = {url.split("://", 1)[0].lower() for url in [*ldap.urls, ldap.write_url or ""] if url}
    if "ldap" in schemes:
        problems.append(
            "IACS_LDAP__URL: plain ldap:// sends passwords in clear text; use ldaps:// "
            "(with IACS_LDAP__CA_FILE) outside the development stack"
        )
    scheme = "ldaps" if "ldaps" in schemes else ""
    if scheme == "ldaps" and ldap.ca_file is None:
        problems.append(
            "IACS_LDAP__CA_FILE: must name the CA file that signed the directory's certificate"
        )
    elif scheme == "ldaps" and ldap.ca_file is not None and not ldap.ca_file.is_file():
        problems.append(f"IACS_LDAP__CA_FILE: {ldap.ca_file} does not exist")
    return problems


def load_settings(*, client: bool = True, **overrides: object) -> Settings:
    """Read and validate the settings, or stop with a message naming every invalid field.

    ``client=False`` is for the directory server itself (``iacs directory serve``), which makes
    the CA its clients then verify against: it does not connect as an LDAP client.
    """
    env_file = os.environ.get("IACS_SETTINGS_FILE")
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]  # pydantic validates them
    except ValidationError as exc:
        lines = ["invalid settings:"]
        for error in exc.errors():
            path = "__".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  IACS_{path}: {error['msg']}" if path else f"  {error['msg']}")
        raise SettingsError("\n".join(lines)) from None
    problems = ldap_transport_problems(settings) if client else []
    if problems:
        raise SettingsError("\n".join(["invalid settings:", *(f"  {p}" for p in problems)]))
    return settings


def known_environment_variables() -> set[str]:
    """Every ``IACS_*`` variable the settings understand (docker-compose is checked against it)."""
    names = {"IACS_SETTINGS_FILE"}
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            names.add(f"IACS_{section.upper()}")  # a top-level value such as the environment
            continue
        for sub in model.model_fields:
            names.add(f"IACS_{section.upper()}__{sub.upper()}")
    return names


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The ``IACS_*`` variables that reproduce ``settings`` in another process, secrets too."""
    env: dict[str, str] = {"IACS_ENVIRONMENT": settings.environment}
    for section_name, section in _sections(settings):
        for field_name in type(section).model_fields:
            value = getattr(section, field_name)
            if value is None or isinstance(value, UnsetSecret):
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, dict):
                value = json.dumps(
                    {
                        k: v.get_secret_value() if isinstance(v, SecretStr) else v
                        for k, v in value.items()
                    }
                )
            elif isinstance(value, list):
                value = json.dumps(value)
            env[f"IACS_{section_name.upper()}__{field_name.upper()}"] = str(value)
    return env
