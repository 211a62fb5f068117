"""The Keycloak launcher: prerequisites named, failures reported with the log, no process left."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iacs.stack import keycloak as launcher
from iacs.stack.keycloak import ensure_distribution, find_java, start_keycloak
from iacs.stack.process import MissingPrerequisite, ServerStartError


def processes_mentioning(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker`` (e.g. a run directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def gone(pids: list[int], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not [pid for pid in pids if Path(f"/proc/{pid}").exists()]:
            return True
        time.sleep(0.1)
    return False


def test_missing_java_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("IACS_KEYCLOAK_JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingPrerequisite, match="openjdk-17-jre-headless"):
        find_java()


def test_missing_maven_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    try:
        java = find_java()
    except MissingPrerequisite:
        pytest.skip("no Java here: the Maven check comes after the Java check")
    monkeypatch.setenv("IACS_KEYCLOAK_JAVA_HOME", str(java.home))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingPrerequisite, match="maven"):
        ensure_distribution(cache_dir=tmp_path)


@pytest.mark.servers
def test_java_found_is_one_keycloak_supports() -> None:
    assert find_java().major >= launcher.MINIMUM_JAVA


@pytest.mark.servers
def test_built_distribution_is_reused_at_once() -> None:
    home = ensure_distribution()
    stamp = home / launcher.STAMP_NAME
    built = stamp.stat().st_mtime_ns
    assert ensure_distribution() == home
    assert stamp.stat().st_mtime_ns == built, "a second call rebuilt the distribution"
    assert (home / "bin" / "kc.sh").exists()
    repo = Path(__file__).resolve().parents[2]
    assert repo not in home.resolve().parents, "the cache lives outside the repository"


@pytest.mark.servers
def test_bad_option_fails_with_the_log_and_leaves_no_process(tmp_path: Path) -> None:
    run_dir = tmp_path / "bad-option"
    with pytest.raises(ServerStartError) as failure:
        start_keycloak(
            run_dir,
            admin_username="admin",
            admin_password="admin-password-1",
            extra_args=["--log-level=shouting"],
            timeout=120,
        )
    message = str(failure.value)
    assert "exited with code" in message
    assert "keycloak.log" in message
    assert "shouting" in message, "the log tail names the bad value"
    assert gone(processes_mentioning(str(run_dir)))


@pytest.mark.servers
def test_not_ready_in_time_is_stopped_and_reported(tmp_path: Path) -> None:
    run_dir = tmp_path / "too-slow"
    with pytest.raises(ServerStartError, match=r"not ready after \d+s") as failure:
        start_keycloak(run_dir, admin_username="admin", admin_password="pw", timeout=3)
    assert "keycloak.log" in str(failure.value)
    assert gone(processes_mentioning(str(run_dir)))


@pytest.mark.servers
def test_the_cluster_variant_is_a_copy_and_leaves_the_cached_build_as_it_was() -> None:
    base = ensure_distribution()
    variant = ensure_distribution(variant=launcher.CLUSTER_VARIANT)
    assert variant != base and variant.parent == base.parent
    assert launcher._stamp_matches(base, launcher.BUILD_OPTIONS)
    assert launcher._stamp_matches(variant, launcher.CLUSTER_BUILD_OPTIONS)
    stamp = variant / launcher.STAMP_NAME
    built = stamp.stat().st_mtime_ns
    assert ensure_distribution(variant=launcher.CLUSTER_VARIANT) == variant
    assert stamp.stat().st_mtime_ns == built, "a second call rebuilt the variant"


def test_cluster_ports_leave_room_for_jgroups_failure_detection() -> None:
    port = launcher.free_cluster_port()
    assert launcher.CLUSTER_PORT_RANGE[0] <= port < launcher.CLUSTER_PORT_RANGE[1]
    assert port + 50_000 < 65_536
