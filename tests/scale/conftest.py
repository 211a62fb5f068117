"""Two real slapd providers in multi-provider replication (``iacs.stack.slapd.start_providers``).

``providers`` is one set per module: the first provider bootstrapped the tree, the second
replicated it. ``Providers.restart(i)`` starts a stopped provider again on the same data and
port, as an operator would after a crash.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import ldap3
import pytest

from directory_schema.config import Replication
from iacs.directory import Directory
from iacs.settings import LdapSettings
from iacs.stack.slapd import SlapdInstance, start_providers, start_slapd
from iacs.stack.tls import TlsFiles
from tests.fixtures.slapd import reset_tree

T = TypeVar("T")


@dataclass
class Providers:
    """A running multi-provider set and what it takes to restart one of them."""

    instances: list[SlapdInstance]
    tls_dir: Path
    replication_password: str = field(repr=False)

    @property
    def urls(self) -> list[str]:
        return [instance.url for instance in self.instances]

    def settings(self, order: tuple[int, ...] = (0, 1), *, write: int | None = 0) -> LdapSettings:
        """``LdapSettings`` listing the providers in ``order``; writes to provider ``write``."""
        return self.instances[0].ldap_settings(
            url=" ".join(self.urls[index] for index in order),
            write_url=None if write is None else self.urls[write],
        )

    def root(self, index: int) -> Directory:
        """The root DN on provider ``index`` alone (no failover)."""
        instance = self.instances[index]
        return Directory(
            instance.ldap_settings(), bind_dn=instance.root_dn, password=instance.root_password
        )

    def stop(self, index: int) -> None:
        self.instances[index].stop()

    def restart(self, index: int) -> SlapdInstance:
        """Start provider ``index`` again: same run directory, port, peers and root password."""
        old = self.instances[index]
        peers = tuple(url for other, url in enumerate(self.urls) if other != index)
        self.instances[index] = start_slapd(
            old.run_dir,
            port=old.port,
            tls_dir=self.tls_dir,
            root_password=old.root_password,
            durable=True,
            replication=Replication(index + 1, peers, self.replication_password),
        )
        return self.instances[index]

    def ensure_running(self) -> None:
        for index, instance in enumerate(self.instances):
            if not instance.running:
                self.restart(index)


@pytest.fixture(scope="module")
def providers(
    tmp_path_factory: pytest.TempPathFactory, directory_tls: TlsFiles
) -> Iterator[Providers]:
    """Two providers sharing the session's test CA; durable, so a restart keeps the data."""
    tls_dir = directory_tls.ca_file.parent
    password = secrets.token_urlsafe(24)
    base = tmp_path_factory.mktemp("providers")
    instances = start_providers(
        [base / "p1", base / "p2"], tls_dir=tls_dir, replication_password=password, durable=True
    )
    own = Providers(instances, tls_dir, password)
    try:
        yield own
    finally:
        for instance in own.instances:
            instance.stop()


@pytest.fixture
def clean_providers(providers: Providers) -> Providers:
    """Both providers running, the data subtrees empty on both (cleaned on the first)."""
    providers.ensure_running()
    reset_tree(providers.instances[0])
    wait_for(lambda: _empty(providers.instances[1]), 30, "the cleaning replicated")
    return providers


def _empty(instance: SlapdInstance) -> bool:
    connection = instance.connect()
    try:
        connection.search(
            f"ou=organizations,{instance.base_dn}",
            "(objectClass=*)",
            ldap3.LEVEL,
            attributes=["1.1"],
        )
        return not connection.response
    finally:
        connection.unbind()


def wait_for(check: Callable[[], T], seconds: float, what: str, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something true; a server error counts as "not yet"."""
    deadline = time.monotonic() + seconds
    last: object = None
    while True:
        try:
            value = check()
        except Exception as exc:  # a provider coming back may refuse for a moment
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f}s (last: {last!r})")
        time.sleep(interval)
