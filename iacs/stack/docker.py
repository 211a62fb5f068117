"""A private Docker engine that runs ``docker-compose.yml`` as deployed, for tests and operators.

Nothing here needs an image registry. ``start_engine`` starts Debian's ``dockerd`` as root with
its own data root, exec root and socket (``vfs`` storage, no iptables, no default bridge), so it
never touches a system engine; ``DockerEngine.stop`` ends it. ``ensure_base_image`` makes a
Debian 12 base image with ``mmdebstrap`` and ``docker import`` (the tarball is cached outside the
repository, like the Keycloak distribution); ``build_images`` builds every image of the
deployment on it with BuildKit and ``--network host``, handing the system CA bundle to the build
as a secret (used by pip, never stored in an image). ``ComposeProject`` writes the deployment's
secrets and a test CA once into a state directory and runs ``docker-compose`` (Debian's v1) with
the locally built image names.

Why each ``dockerd`` option: ``--storage-driver vfs`` works on any file system (no overlay
inside a container); ``--iptables=false`` leaves the host's firewall alone, so published ports
go through docker-proxy; ``--bridge none`` creates no ``docker0`` (compose makes its own
network); a private ``--exec-root``/``--pidfile`` lets it live beside any other engine.

Measured here (2 cores, warm apt): the base tarball ~30 s once; see docs/deployment.md for the
cold and warm image builds and the compose test.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from iacs.stack.keycloak import KEYCLOAK_VERSION, MAVEN_ARTIFACT, _find_maven, cache_root
from iacs.stack.process import ManagedProcess, MissingPrerequisite, ServerStartError, tail

DOCKER_PACKAGES = ("docker.io", "docker-compose", "mmdebstrap")
"""Debian packages this module needs: the engine and its CLI, Compose v1, the base image maker."""

DEBIAN_SUITE = "bookworm"
BASE_IMAGE = "iacs-local/debian:bookworm"
"""The base image made with mmdebstrap; every local image is built ``FROM`` it."""

DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)

ADDRESS_POOL = "10.213.0.0/16"
"""Where the private engine takes its networks from (compose's own network is set in the file)."""

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

COMPOSE_PROJECT = "iacs"


@dataclass(frozen=True)
class ImageSpec:
    """One image of the deployment: the compose variable that names it, how to build it."""

    variable: str
    local_name: str
    dockerfile: str
    context: str


IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("IACS_IMAGE", "iacs-local/iacs:dev", "Dockerfile", "."),
    ImageSpec(
        "IACS_KEYCLOAK_IMAGE",
        f"iacs-local/keycloak:{KEYCLOAK_VERSION}",
        "deploy/keycloak/Dockerfile",
        "<keycloak>",
    ),
    ImageSpec(
        "IACS_POSTGRES_IMAGE",
        "iacs-local/postgres:15",
        "deploy/postgres/Dockerfile",
        "deploy/postgres",
    ),
    ImageSpec("IACS_REDIS_IMAGE", "iacs-local/redis:7", "deploy/redis/Dockerfile", "deploy/redis"),
    ImageSpec(
        "IACS_PROXY_IMAGE", "iacs-local/nginx:1.22", "deploy/proxy/Dockerfile", "deploy/proxy"
    ),
)
"""Every image compose runs, with the variable of docker-compose.yml that overrides its name."""


class EngineCannotStart(ServerStartError):
    """``dockerd`` exited before it answered: this machine cannot run an engine (e.g. a
    container without the privileges, cgroups or kernel features it needs). The compose suite
    skips on it, with the engine's own log as the reason; a timeout is a failure instead."""


def engine_unavailable_reason() -> str | None:
    """Why a Docker engine cannot be started here, or None when it can."""
    if shutil.which("dockerd") is None and not Path("/usr/sbin/dockerd").exists():
        return "no dockerd on this machine (Debian package docker.io)"
    if os.geteuid() != 0:
        return "dockerd must be started as root and this process is not root"
    if _docker_cli() is None:
        return "no docker CLI (Debian package docker.io)"
    if shutil.which("docker-compose") is None:
        return "no docker-compose (Debian package docker-compose)"
    if shutil.which("mmdebstrap") is None:
        return "no mmdebstrap to make the base image (Debian package mmdebstrap)"
    return None


def _docker_cli() -> str | None:
    """Debian's docker CLI (the one beside dockerd), else whatever ``docker`` is on PATH."""
    for candidate in ("/usr/bin/docker",):
        if Path(candidate).exists():
            return candidate
    return shutil.which("docker")


def _dockerd() -> str:
    found = shutil.which("dockerd") or (
        "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None
    )
    if found is None:
        raise MissingPrerequisite("no dockerd: apt-get install docker.io")
    return found


# --------------------------------------------------------------------------------------------
# The engine


@dataclass
class DockerEngine:
    """A running private ``dockerd``; ``docker``/``compose`` run the CLIs against it."""

    root: Path
    process: ManagedProcess
    lock: IO[str]

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a CLI talking to this engine (and to no other)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("DOCKER_")}
        env.update({"DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "1"})
        env.update(extra or {})
        return env

    def docker(
        self, *args: str, timeout: float = 600, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` against this engine; raise with its output when it fails."""
        cli = _docker_cli()
        if cli is None:
            raise MissingPrerequisite("no docker CLI: apt-get install docker.io")
        return _run([cli, *args], env=self.env(), timeout=timeout, check=check, input=input)

    def image_exists(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False, timeout=60).returncode == 0

    def stop(self) -> None:
        """Stop the engine (its containers stop with it) and release the data root."""
        self.process.stop(grace=60)
        with contextlib.suppress(OSError):
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def default_engine_root() -> Path:
    """Where the engine keeps images and volumes between runs (so warm builds stay warm)."""
    return cache_root() / "docker"


def start_engine(root: Path | None = None, timeout: float = 90) -> DockerEngine:
    """Start a private ``dockerd`` on ``root`` (one engine per root, held by a lock file)."""
    reason = engine_unavailable_reason()
    if reason:
        raise MissingPrerequisite(reason)
    root = Path(root or default_engine_root()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    lock = (root / "engine.lock").open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ServerStartError(
            f"another engine already runs on {root} (see {root / 'dockerd.log'})"
        ) from None
    socket = root / "docker.sock"
    socket.unlink(missing_ok=True)
    process = ManagedProcess(
        "dockerd",
        [
            _dockerd(),
            *("--data-root", str(root / "data")),
            *("--exec-root", str(root / "exec")),
            *("--pidfile", str(root / "dockerd.pid")),
            *("--host", f"unix://{socket}"),
            *("--storage-driver", "vfs"),
            "--iptables=false",
            "--ip-masq=false",
            *("--bridge", "none"),
            *("--default-address-pool", f"base={ADDRESS_POOL},size=24"),
            "--userland-proxy=true",
            *("--log-level", "warn"),
        ],
        root / "dockerd.log",
    )
    process.start()
    engine = DockerEngine(root=root, process=process, lock=lock)
    try:
        process.wait_ready(
            lambda: (
                socket.exists()
                and engine.docker("version", check=False, timeout=10).returncode == 0
            ),
            timeout=timeout,
            interval=0.5,
        )
    except ServerStartError as exc:
        engine.stop()
        code = process.process.returncode if process.process is not None else None
        if code is None or code < 0:  # not ready in time: stopped by a signal from wait_ready
            raise
        raise EngineCannotStart(str(exc)) from exc
    except BaseException:
        engine.stop()
        raise
    return engine


# --------------------------------------------------------------------------------------------
# Images


def ensure_base_image(engine: DockerEngine, cache_dir: Path | None = None) -> float:
    """Import the mmdebstrap base image into ``engine``; the seconds it took (0 when present)."""
    if engine.image_exists(BASE_IMAGE):
        return 0.0
    started = time.monotonic()
    tarball = cache_root(cache_dir) / "docker-base" / f"debian-{DEBIAN_SUITE}.tar"
    tarball.parent.mkdir(parents=True, exist_ok=True)
    if not tarball.exists():
        partial = tarball.with_name(f"{tarball.stem}.partial.tar")
        partial.unlink(missing_ok=True)
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--format=tar",
                "--include=ca-certificates",
                "--aptopt=Acquire::Check-Valid-Until false",
                DEBIAN_SUITE,
                str(partial),
                *DEBIAN_SOURCES,
            ],
            timeout=1200,
        )
        partial.rename(tarball)
    engine.docker("import", "--change", 'CMD ["/bin/bash"]', str(tarball), BASE_IMAGE, timeout=600)
    return time.monotonic() - started


def _keycloak_context(cache_dir: Path | None = None) -> Path:
    """A build context with the Keycloak distribution zip, fetched with Maven like the launcher."""
    context = cache_root(cache_dir) / "docker-base" / f"keycloak-{KEYCLOAK_VERSION}"
    archive = context / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip"
    if not archive.exists():
        context.mkdir(parents=True, exist_ok=True)
        _run(
            [
                _find_maven(),
                *("-q", "-B", "dependency:copy"),
                f"-Dartifact={MAVEN_ARTIFACT.format(version=KEYCLOAK_VERSION)}",
                f"-DoutputDirectory={context}",
            ],
            cwd=context,
            timeout=1800,
        )
    return context


def build_images(
    engine: DockerEngine,
    project_dir: Path,
    cache_dir: Path | None = None,
    log: Path | None = None,
) -> dict[str, float]:
    """Build every image of the deployment on the base image; seconds per image.

    BuildKit's cache makes a rebuild with no change take seconds. The host's CA bundle is passed
    as the build secret ``ca_bundle`` (pip needs it behind a TLS-inspecting proxy); it is
    mounted for one ``RUN`` and is in no layer.
    """
    timings = {"base": ensure_base_image(engine, cache_dir)}
    for spec in IMAGES:
        context = (
            _keycloak_context(cache_dir)
            if spec.context == "<keycloak>"
            else project_dir / spec.context
        )
        args = [
            "build",
            "--network",
            "host",
            "--progress",
            "plain",
            *("--build-arg", f"BASE_IMAGE={BASE_IMAGE}"),
            *("-f", str(project_dir / spec.dockerfile)),
            *("-t", spec.local_name),
        ]
        if SYSTEM_CA_BUNDLE.exists():
            args += ["--secret", f"id=ca_bundle,src={SYSTEM_CA_BUNDLE}"]
        started = time.monotonic()
        result = engine.docker(*args, str(context), timeout=3600, check=False)
        timings[spec.variable] = time.monotonic() - started
        if log is not None:
            with log.open("a") as handle:
                handle.write(f"==== {spec.local_name}\n{result.stdout}\n{result.stderr}\n")
        if result.returncode != 0:
            raise ServerStartError(
                f"building {spec.local_name} from {spec.dockerfile} failed:\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
    # vfs stores every layer as a full copy: drop the images a rebuild left without a name.
    engine.docker("image", "prune", "--force", check=False, timeout=600)
    return timings


# --------------------------------------------------------------------------------------------
# The deployment: secrets, a test CA, docker-compose


SECRET_VARIABLES = (
    "IACS_LDAP_ROOT_PASSWORD",
    "IACS_LDAP_PORTAL_PASSWORD",
    "IACS_LDAP_SYNC_PASSWORD",
    "IACS_LDAP_KEYCLOAK_PASSWORD",
    "IACS_SYNC_CLIENT_SECRET",
    "IACS_PORTAL_CLIENT_SECRET",
    "IACS_PORTAL_SECRET_KEY",
    "IACS_REDIS_PASSWORD",
    "IACS_SYNC_NUDGE_TOKEN",
    "KEYCLOAK_DB_PASSWORD",
    "KEYCLOAK_ADMIN_PASSWORD",
)
"""The secrets of docker-compose.yml; ``ComposeProject`` makes each once, at random."""


@dataclass
class ComposeProject:
    """docker-compose.yml on a private engine, with its state (secrets, TLS) in ``state_dir``.

    The state directory keeps the generated secrets and the test CA across ``down``/``up`` (the
    PostgreSQL and LDAP volumes were initialized with those passwords). The proxy is published
    on ``127.0.0.1:port`` only; the public URLs are ``https://localhost:port`` (portal) and
    ``https://localhost:port/auth`` (Keycloak).
    """

    engine: DockerEngine
    project_dir: Path
    state_dir: Path
    port: int
    hostname: str = "localhost"
    name: str = COMPOSE_PROJECT
    subnet: str = "10.213.7.0/24"
    """The compose network; the proxy takes its address .250 (projects on one engine differ)."""
    applications: Mapping[str, str] = field(default_factory=dict)
    """Integrated applications to register: client id → redirect URI (secrets are generated)."""
    values: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.values = self._load_or_make_secrets()
        make_test_ca(self.tls_dir, [self.hostname, "127.0.0.1"])

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def public_url(self) -> str:
        return f"https://{self.hostname}:{self.port}"

    @property
    def keycloak_public_url(self) -> str:
        return f"{self.public_url}/auth"

    def _load_or_make_secrets(self) -> dict[str, str]:
        path = self.state_dir / "secrets.json"
        values: dict[str, str] = {}
        if path.exists():
            values = json.loads(path.read_text())
        for name in SECRET_VARIABLES:
            values.setdefault(name, secrets.token_urlsafe(32))
        values.setdefault("KEYCLOAK_ADMIN_USERNAME", "iacs-admin")
        for client_id in self.applications:
            values.setdefault(f"application:{client_id}", secrets.token_urlsafe(32))
        path.write_text(json.dumps(values, indent=2) + "\n")
        os.chmod(path, 0o600)
        return values

    def application_secret(self, client_id: str) -> str:
        return self.values[f"application:{client_id}"]

    def environment(self) -> dict[str, str]:
        """What docker-compose.yml reads: secrets, URLs, TLS, and the local image names."""
        env = {
            **{k: v for k, v in self.values.items() if not k.startswith("application:")},
            "IACS_APPLICATION_REDIRECT_URIS": json.dumps(dict(self.applications)),
            "IACS_APPLICATION_CLIENT_SECRETS": json.dumps(
                {client: self.application_secret(client) for client in self.applications}
            ),
            "IACS_KEYCLOAK_PUBLIC_URL": self.keycloak_public_url,
            "IACS_PORTAL_PUBLIC_URL": self.public_url,
            "IACS_TLS_DIR": str(self.tls_dir),
            "IACS_PROXY_PUBLISH": f"127.0.0.1:{self.port}",
            "IACS_SUBNET": self.subnet,
            "IACS_PROXY_ADDRESS": str(ipaddress.ip_network(self.subnet)[250]),
        }
        env.update({spec.variable: spec.local_name for spec in IMAGES})
        return env

    def write_env_file(self) -> Path:
        """``.env`` form of ``environment()`` for an operator's own ``docker-compose`` calls."""
        path = self.state_dir / "env"
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.environment().items())))
        os.chmod(path, 0o600)
        return path

    def compose(
        self, *args: str, timeout: float = 1800, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker-compose ARGS`` on the project's file against the private engine."""
        argv = [
            "docker-compose",
            *("--project-name", self.name),
            *("--file", str(self.project_dir / "docker-compose.yml")),
            *("--project-directory", str(self.project_dir)),
            *args,
        ]
        env = self.engine.env({**self.environment(), "COMPOSE_HTTP_TIMEOUT": "300"})
        return _run(argv, env=env, timeout=timeout, check=check, cwd=self.project_dir)

    def up(self, timeout: float = 900) -> None:
        """``up -d`` (compose waits on each healthcheck), then wait until the proxy serves both."""
        self.compose("up", "-d", "--no-build", timeout=timeout)
        self.wait_ready(timeout=timeout)

    def down(self, volumes: bool = False) -> None:
        self.compose("down", *(("--volumes",) if volumes else ()), timeout=600)

    def wait_ready(self, timeout: float = 600) -> None:
        """The portal's /healthz and the realm's discovery answer through the proxy."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                portal = requests.get(
                    f"{self.public_url}/healthz", verify=str(self.ca_file), timeout=5
                )
                realm = requests.get(
                    f"{self.keycloak_public_url}/realms/iacs/.well-known/openid-configuration",
                    verify=str(self.ca_file),
                    timeout=5,
                )
                if portal.ok and realm.ok:
                    return
                last = f"portal {portal.status_code}, realm {realm.status_code}"
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(2)
        logs = self.compose("logs", "--tail", "30", check=False).stdout
        raise ServerStartError(
            f"the deployment was not ready after {timeout:.0f}s ({last}):\n{logs[-6000:]}"
        )


def make_test_ca(tls_dir: Path, proxy_names: Sequence[str]) -> None:
    """A test CA and the certificates compose mounts (proxy, keycloak), once per state dir.

    Files are world-readable inside a 0700 state directory: the container users (keycloak,
    www-data) read them through the bind mount. An operator puts their own files there instead.
    """
    if (tls_dir / "ca.crt").exists() and (tls_dir / "keycloak.key").exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    tls_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o755)  # noqa: S103 - containers read it; the state dir above is 0700
    now = datetime.datetime.now(datetime.UTC)

    def write(name: str, data: bytes) -> None:
        (tls_dir / name).write_bytes(data)
        os.chmod(tls_dir / name, 0o644)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "IACS compose test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write("ca.crt", ca.public_bytes(serialization.Encoding.PEM))

    def leaf(name: str, dns_names: Sequence[str]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for value in dns_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(value)))
            except ValueError:
                alt.append(x509.DNSName(value))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write(f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
        write(
            f"{name}.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    leaf("proxy", list(proxy_names))
    leaf("keycloak", ["keycloak"])


def _run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    check: bool = True,
    input: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input,
        cwd=cwd,
    )
    if check and result.returncode != 0:
        raise ServerStartError(
            f"{' '.join(argv[:4])} ... failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )
    return result


@contextlib.contextmanager
def running_engine(root: Path | None = None) -> Iterator[DockerEngine]:
    """``with running_engine() as engine:`` the engine runs inside the block only."""
    engine = start_engine(root)
    try:
        yield engine
    finally:
        engine.stop()


__all__ = [
    "BASE_IMAGE",
    "IMAGES",
    "ComposeProject",
    "DockerEngine",
    "build_images",
    "engine_unavailable_reason",
    "ensure_base_image",
    "make_test_ca",
    "running_engine",
    "start_engine",
    "tail",
]


def default_state_dir() -> Path:
    """The launcher's secrets and test CA (outside the repository, kept across runs)."""
    return cache_root() / "compose-state"


def run_foreground(
    project_dir: Path, state_dir: Path, port: int, echo=print, keep: bool = False
) -> None:
    """``iacs compose up``: engine, images, ``up``; wait for Ctrl-C; stop containers and engine.

    Volumes are kept (``docker-compose stop``/``down`` without ``-v``), so the next run finds
    every approved role again; ``iacs compose reset`` removes them.
    """
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    engine = start_engine()
    try:
        echo(f"engine: {engine.host} (data in {engine.root})")
        timings = build_images(engine, project_dir, log=state_dir / "build.log")
        echo("images: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
        project = ComposeProject(engine, project_dir, state_dir, port)
        env_file = project.write_env_file()
        project.up()
        echo(
            f"up in {time.monotonic() - started:.0f}s: portal {project.public_url}/ , "
            f"Keycloak {project.keycloak_public_url}/ (CA {project.ca_file}); "
            f"secrets in {env_file}. Ctrl-C stops."
        )
        try:
            while engine.process.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:  # Ctrl-C, SIGTERM (SystemExit) or the engine gone: stop, keep the volumes
            if not keep and engine.process.running:
                echo("stopping (volumes kept)")
                project.down()
    finally:
        engine.stop()


def reset(project_dir: Path, state_dir: Path) -> None:
    """Remove the deployment's containers, volumes and generated secrets."""
    engine = start_engine()
    try:
        ComposeProject(engine, project_dir, state_dir, port=443).down(volumes=True)
    finally:
        engine.stop()
    shutil.rmtree(state_dir, ignore_errors=True)
