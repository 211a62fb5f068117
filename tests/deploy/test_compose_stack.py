"""docker-compose.yml for real: the deployed topology on a Docker engine the project starts.

The module starts a private ``dockerd`` (``iacs.stack.docker``), builds every image from the
project's Dockerfiles on a Debian base image it makes itself, and runs ``docker-compose up`` on
the very file a deployer uses. Everything then goes through the TLS proxy, the only published
port, as a browser and an API client would: a person signs in through Keycloak's login form,
registers an organization, the help desk approves it (answering the TOTP second factor the realm
asks of officials), the Security Official role shows up in the token's ``affiliations`` claim;
``docker-compose down`` and ``up`` keep it (named volumes); the help desk revokes it and the
refresh token is refused.

Slow (minutes; images cold take longer): marked ``compose``, deselect with ``-m "not compose"``.
Where no Docker engine can run (no dockerd, not root) the module is skipped and says why.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from approval_portal.mfa import mfa_required, passed_mfa
from iacs.stack.docker import (
    ComposeProject,
    DockerEngine,
    EngineCannotStart,
    build_images,
    engine_unavailable_reason,
    start_engine,
)
from iacs.stack.process import free_port
from tests.fixtures.keycloak import browser_code_flow

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Compose-Test-Password-1"
PORTAL_CLIENT = "iacs-portal"
APPLICATION = "psr"
"""An integrated application of the catalogue: its tokens carry the ``affiliations`` claim."""
TIMINGS: dict[str, float] = {}

SEED = r"""
import os, sys
from iacs.directory import Directory
from iacs.directory.errors import AlreadyExists
from iacs.domain import Membership, Person, Role, ScopeKind
from iacs.settings import load_settings

settings = load_settings()
root_dn = f"cn=admin,{settings.ldap.base_dn}"
with Directory(settings.ldap, bind_dn=root_dn,
               password=settings.ldap.root_password.get_secret_value()) as directory:
    for username in sys.argv[2:]:
        try:
            directory.add_person(
                Person(username=username, display_name=f"{username.title()} Compose",
                       email=f"{username}@example.test"),
                sys.argv[1],
            )
        except AlreadyExists:
            pass
    try:
        directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")
    except AlreadyExists:
        pass
print("seeded")
"""


@dataclass
class Chain:
    """What the tests of this module pass on to each other (they run in order)."""

    person: str = field(default_factory=lambda: f"olivia{secrets.randbelow(10**6)}")
    identifier: str = field(default_factory=lambda: f"{secrets.randbelow(10**9):09d}")
    organization_id: str = ""
    tokens: dict[str, dict] = field(default_factory=dict)


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    reason = engine_unavailable_reason()
    if reason:
        pytest.skip(f"compose suite needs a Docker engine: {reason}")
    started = time.monotonic()
    try:
        engine = start_engine()
    except EngineCannotStart as exc:
        pytest.skip(f"compose suite needs a Docker engine, and dockerd cannot run here: {exc}")
    TIMINGS["engine start"] = time.monotonic() - started
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def deployment(
    engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeProject]:
    """The deployment, fresh (volumes removed before and after).

    ``IACS_COMPOSE_REUSE=<dir>`` keeps the state (secrets, CA, port) in ``<dir>`` and the
    containers and volumes between runs, for working on these tests; the run is then no longer
    from scratch.
    """
    reuse = os.environ.get("IACS_COMPOSE_REUSE")
    state = Path(reuse) if reuse else tmp_path_factory.mktemp("compose-state")
    state.mkdir(parents=True, exist_ok=True)
    port_file = state / "port"
    port = int(port_file.read_text()) if reuse and port_file.exists() else free_port()
    port_file.write_text(str(port))
    started = time.monotonic()
    for name, seconds in build_images(engine, ROOT, log=state / "build.log").items():
        TIMINGS[f"build {name}"] = seconds
    TIMINGS["build all"] = time.monotonic() - started
    project = ComposeProject(
        engine,
        ROOT,
        state,
        port=port,
        name="iacs-test",
        subnet="10.213.8.0/24",  # not the launcher's: both may live on one engine
        applications={APPLICATION: f"https://localhost:{port}/psr/oidc/callback"},
    )
    if not reuse:
        project.down(volumes=True)  # nothing left from an interrupted run
    started = time.monotonic()
    try:
        project.up()
        TIMINGS["up (cold volumes)"] = time.monotonic() - started
        yield project
    finally:
        logs = project.compose("logs", "--no-color", check=False)
        (state / "compose.log").write_text(logs.stdout + logs.stderr)
        if not reuse:
            project.down(volumes=True)
        print("\ncompose timings (s): " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain()


# --------------------------------------------------------------------------------------------
# Talking to the deployment through the proxy only


def _session(project: ComposeProject) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE of the machine wins over verify
    session.verify = str(project.ca_file)
    return session


def _issuer(project: ComposeProject) -> str:
    return f"{project.keycloak_public_url}/realms/iacs"


def _client(project: ComposeProject, client_id: str) -> tuple[str, str, str]:
    """Client id, secret and redirect URI of the portal or of the integrated application."""
    if client_id == PORTAL_CLIENT:
        secret = project.values["IACS_PORTAL_CLIENT_SECRET"]
        return client_id, secret, f"{project.public_url}/auth/callback"
    return client_id, project.application_secret(client_id), project.applications[client_id]


def _sign_in(project: ComposeProject, username: str, client: str = PORTAL_CLIENT) -> dict:
    """The authorization code flow with PKCE through the login form; Keycloak's token JSON."""
    client_id, secret, redirect_uri = _client(project, client)
    http = _session(project)
    result = browser_code_flow(
        _issuer(project),
        client_id,
        redirect_uri,
        username,
        PASSWORD,
        scope="openid profile email",
        session=http,
    )
    assert result.params.get("state") == result.state, result.location
    answer = http.post(
        f"{_issuer(project)}/protocol/openid-connect/token",
        data={
            "grant_type": "authorization_code",
            "code": result.params["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": result.code_verifier,
        },
        auth=(client_id, secret),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sign_in_official(project: ComposeProject, username: str) -> dict:
    """A portal sign-in that passed the second factor the realm asks of those who hold authority.

    At an official's first sign-in Keycloak enrols TOTP, which the portal does not count as a
    second factor (``approval_portal.mfa``): the person signs in once more and answers the code
    (``browser_code_flow`` answers both steps with ``second_factor``).
    """
    claims: dict = {}
    for _ in range(2):
        tokens = _sign_in(project, username)
        claims = _claims(tokens["access_token"])
        if not mfa_required(claims) or passed_mfa(claims):
            return tokens
    raise AssertionError(f"{username}: no second factor in the token: {claims.get('amr')}")


def _refresh(project: ComposeProject, refresh_token: str) -> requests.Response:
    client_id, secret, _ = _client(project, APPLICATION)
    return _session(project).post(
        f"{_issuer(project)}/protocol/openid-connect/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(client_id, secret),
        timeout=30,
    )


def _claims(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _api(project: ComposeProject, token: str, method: str, path: str, body: object = None):
    return _session(project).request(
        method,
        f"{project.public_url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _security_official_of(claims: dict, organization_id: str) -> bool:
    return any(
        affiliation.get("role") == "security_official"
        and organization_id in json.dumps(affiliation)
        for affiliation in claims.get("affiliations", [])
    )


def _wait_for_claim(project: ComposeProject, username: str, organization_id: str) -> dict:
    """Refresh until the worker has projected the role into Keycloak; the token JSON."""
    tokens = _sign_in(project, username, APPLICATION)
    deadline = time.monotonic() + 120
    while not _security_official_of(_claims(tokens["access_token"]), organization_id):
        assert time.monotonic() < deadline, (
            f"no claim after 120 s: {_claims(tokens['access_token'])}"
        )
        time.sleep(1)
        refreshed = _refresh(project, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        tokens = refreshed.json()
    return tokens


# --------------------------------------------------------------------------------------------
# The chain, in order


def test_only_the_proxy_is_published_and_it_speaks_tls_only(deployment: ComposeProject) -> None:
    published = deployment.engine.docker(
        "ps",
        "--filter",
        f"label=com.docker.compose.project={deployment.name}",
        "--format",
        "{{.Names}} {{.Ports}}",
    ).stdout
    with_ports = [line for line in published.splitlines() if "->" in line]
    assert len(with_ports) == 1 and "proxy" in with_ports[0], published
    assert f"127.0.0.1:{deployment.port}->8443/tcp" in with_ports[0]
    plain = requests.get(f"http://127.0.0.1:{deployment.port}/healthz", timeout=5)
    assert plain.status_code == 400, "plain HTTP must not reach the portal"
    assert "directory" not in plain.text


def test_the_portals_sign_in_and_keycloaks_paths_share_auth_without_mixing(
    deployment: ComposeProject,
) -> None:
    """/auth/login is the portal's (a redirect to Keycloak's authorization endpoint), the
    realm's discovery is Keycloak's, and Keycloak's admin API is not published."""
    session = _session(deployment)
    base = deployment.public_url
    login = session.get(f"{base}/auth/login", allow_redirects=False, timeout=30)
    assert login.status_code in (302, 303), login.text[:300]
    assert "/auth/realms/iacs/protocol/openid-connect/auth" in login.headers["Location"]
    discovery = session.get(f"{_issuer(deployment)}/.well-known/openid-configuration", timeout=30)
    assert discovery.json()["issuer"] == _issuer(deployment)
    admin = session.get(f"{base}/auth/admin/realms/iacs/users", timeout=30)
    assert admin.status_code != 200 and "username" not in admin.text


def test_images_run_as_non_root_users(deployment: ComposeProject) -> None:
    for service in ("directory", "portal", "sync", "keycloak", "postgres", "redis", "proxy"):
        uid = deployment.compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid != "0", f"{service} runs as root"


def test_the_installed_package_needs_no_checkout(deployment: ComposeProject) -> None:
    script = (
        "import keycloak_config.apply as a, iacs.catalogue as c, directory_schema as d; "
        "print(a.REALM_FILE.exists() and c.DEFAULT_CATALOGUE.exists() "
        "and d.schema_path().exists(), a.__file__)"
    )
    answer = deployment.compose("exec", "-T", "portal", "python3", "-c", script).stdout
    assert answer.startswith("True /opt/iacs/lib/"), answer


def test_register_approve_claim(deployment: ComposeProject, chain: Chain) -> None:
    seeded = deployment.compose(
        "exec",
        "-T",
        "directory",
        "python3",
        "-c",
        SEED,
        PASSWORD,
        "helpdesk",
        chain.person,
    )
    assert "seeded" in seeded.stdout, seeded.stdout + seeded.stderr
    olivia = _sign_in(deployment, chain.person)["access_token"]
    filed = _api(
        deployment,
        olivia,
        "POST",
        "/requests",
        {
            "kind": "register_organization",
            "name": "Compose General",
            "identifier": chain.identifier,
            "provider_type": "hospital",
        },
    )
    assert filed.status_code == 201, filed.text
    helpdesk = _sign_in_official(deployment, "helpdesk")["access_token"]
    decided = _api(
        deployment,
        helpdesk,
        "POST",
        f"/requests/{filed.json()['id']}/decision",
        {"decision": "approve"},
    )
    assert decided.status_code == 200, decided.text
    chain.organization_id = filed.json()["organization_id"]
    chain.tokens[chain.person] = _wait_for_claim(deployment, chain.person, chain.organization_id)


def test_down_and_up_keep_every_approved_role(deployment: ComposeProject, chain: Chain) -> None:
    assert chain.organization_id, "needs test_register_approve_claim"
    deployment.down()
    started = time.monotonic()
    deployment.up()
    TIMINGS["up (warm volumes)"] = time.monotonic() - started
    tokens = _sign_in(deployment, chain.person, APPLICATION)
    assert _security_official_of(_claims(tokens["access_token"]), chain.organization_id)
    me = _api(deployment, _sign_in_official(deployment, chain.person)["access_token"], "GET", "/me")
    assert me.status_code == 200, me.text
    roles = {(m["role"], m["scope_id"]) for m in me.json()["memberships"]}
    assert ("security_official", chain.organization_id) in roles
    chain.tokens[chain.person] = tokens


def test_revoke_and_the_refresh_is_refused(deployment: ComposeProject, chain: Chain) -> None:
    assert chain.tokens.get(chain.person), "needs the tests above"
    helpdesk = _sign_in_official(deployment, "helpdesk")["access_token"]
    revoked = _api(
        deployment,
        helpdesk,
        "POST",
        "/revocations",
        {
            "username": chain.person,
            "role": "security_official",
            "scope_kind": "organization",
            "scope_id": chain.organization_id,
            "reason": "compose test",
        },
    )
    assert revoked.status_code == 204, revoked.text
    deadline = time.monotonic() + 120
    while True:
        answer = _refresh(deployment, chain.tokens[chain.person]["refresh_token"])
        if answer.status_code == 400:
            assert answer.json().get("error") == "invalid_grant", answer.text
            break
        assert time.monotonic() < deadline, f"refresh still accepted after 120 s: {answer.text}"
        time.sleep(1)


def test_sec_keycloak_trusts_forwarded_headers_only_from_the_proxy(
    deployment: ComposeProject,
) -> None:
    """A container beside Keycloak (not the proxy) cannot make it publish another host.

    Backchannel URLs are derived from the request (hostname-backchannel-dynamic), so a trusted
    X-Forwarded-Host would move the token endpoint; from anyone but the proxy it must not.
    """
    script = (
        "import requests; r = requests.get('https://keycloak:8443/auth/realms/iacs/"
        ".well-known/openid-configuration', headers={'X-Forwarded-Host': 'evil.example', "
        "'X-Forwarded-Proto': 'http', 'X-Forwarded-Port': '80'}, timeout=10); "
        "print(r.json()['token_endpoint'])"
    )
    endpoint = deployment.compose("exec", "-T", "portal", "python3", "-c", script).stdout.strip()
    assert endpoint.startswith("https://keycloak:8443/auth/"), endpoint
    through_proxy = _session(deployment).get(
        f"{_issuer(deployment)}/.well-known/openid-configuration",
        headers={"X-Forwarded-Host": "evil.example"},
        timeout=10,
    )
    assert "evil.example" not in through_proxy.text
