"""Load a generated community into a private slapd started by the project's own launcher.

The fastest load is offline: start slapd once so that the launcher writes and checks its config
and bootstraps the base tree, stop it, ``slapadd`` the community's LDIF into the same database,
start it again. The help desk members are then added online (the bootstrap already holds their
group), so the ``memberof`` overlay writes their ``memberOf`` itself.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import ldap3

from iacs.stack.slapd import start_slapd

from .generate import Community


@dataclass
class LoadedDirectory:
    """A running slapd holding the community, and what loading it cost."""

    slapd: object
    """The ``iacs.stack.slapd.SlapdInstance``."""
    ldif_path: Path
    entries: int
    generate_seconds: float
    slapadd_seconds: float


def _slapadd() -> str:
    found = shutil.which("slapadd", path="/usr/sbin:/usr/local/sbin:/usr/bin:/usr/local/bin")
    if found is None:
        raise RuntimeError("slapadd is not installed (apt-get install slapd)")
    return found


def load_community(community: Community, run_dir: Path) -> LoadedDirectory:
    """Start slapd in ``run_dir`` with ``community`` loaded by ``slapadd``; the caller stops it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ldif_path = run_dir / "community.ldif"
    entries = community.write_ldif(ldif_path, member_of=True)
    generated = time.perf_counter()

    slapd_dir = run_dir / "slapd"
    first = start_slapd(slapd_dir, base_dn=community.base_dn, durable=False)
    first.stop()
    loading = time.perf_counter()
    done = subprocess.run(
        [
            _slapadd(),
            "-q",
            "-f",
            str(first.config_path),
            "-b",
            community.base_dn,
            "-l",
            str(ldif_path),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"slapadd failed (exit {done.returncode}): {done.stderr[-2000:]}")
    loaded = time.perf_counter()
    slapd = start_slapd(slapd_dir, base_dn=community.base_dn, durable=False)
    try:
        add_help_desk(slapd, community)
    except BaseException:
        slapd.stop()
        raise
    return LoadedDirectory(
        slapd=slapd,
        ldif_path=ldif_path,
        entries=entries,
        generate_seconds=generated - started,
        slapadd_seconds=loaded - loading,
    )


def add_help_desk(slapd, community: Community) -> None:
    """Add the generated help desk to the bootstrap's ``cn=help-desk`` (root bind, online)."""
    members = [community.person_dn(name) for name in community.help_desk()]
    if not members:
        return
    connection = slapd.connect()  # the root DN, over verified ldaps
    try:
        connection.modify(
            f"cn=help-desk,ou=system,{community.base_dn}",
            {"member": [(ldap3.MODIFY_ADD, members)]},
        )
    finally:
        connection.unbind()
