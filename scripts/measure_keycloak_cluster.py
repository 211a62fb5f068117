"""Measure a two-node Keycloak cluster behind the proxy: refresh-token throughput with both
nodes, then with one; the nodes' resident memory. The figures of ``docs/scaling.md``.

Run from a checkout (it uses the test helpers that play the browser):

    .venv/bin/python scripts/measure_keycloak_cluster.py [--people 20] [--threads 8] [--seconds 20]

It starts its own PostgreSQL, two Keycloak nodes and nginx with the project's launchers (the
same ones the tests use) in a temporary directory, and stops them at the end. Refreshes are
what a signed-in population costs Keycloak between sign-ins (each one reads and updates the
user session: the distributed cache, and the persistent session in the database); sign-ins
themselves are dominated by the password check, which the directory does (LDAP federation).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# A measurement stack, like the benchmarks': the published development secrets are defaults.
os.environ.setdefault("IACS_ENVIRONMENT", "development")

from iacs.stack.keycloak import ClusterNode, KeycloakInstance, start_keycloak
from iacs.stack.postgres import start_postgres
from iacs.stack.process import free_port
from iacs.stack.proxy import start_proxy
from iacs.stack.tls import ensure_server_tls
from tests.fixtures.keycloak import apply_test_realm, browser_code_flow

PASSWORD = f"Measure-{secrets.token_hex(6)}-Q9"  # a fresh one per run
CLIENT = "psr"


def _rss_mib(instance: KeycloakInstance) -> int:
    """Resident memory of the node's java process (the launcher's child), in MiB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            if f"PPid:\t{instance.pid}\n" not in text and status.parent.name != str(instance.pid):
                continue
            total = max(total, int(text.split("VmRSS:")[1].split()[0]) // 1024)
        except (OSError, IndexError, ValueError):
            continue
    return total


def _sign_in(realm, username: str) -> str:
    flow = browser_code_flow(realm.issuer, CLIENT, realm.redirect_uris[CLIENT], username, PASSWORD)
    answer = requests.post(
        f"{realm.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "authorization_code",
            "code": flow.params["code"],
            "redirect_uri": realm.redirect_uris[CLIENT],
            "code_verifier": flow.code_verifier,
        },
        auth=(CLIENT, realm.client_secrets[CLIENT]),
        timeout=60,
    )
    answer.raise_for_status()
    return answer.json()["refresh_token"]


def _refresh_load(realm, tokens: list[str], threads: int, seconds: float) -> dict:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        nonlocal failures
        # The realm rotates refresh tokens (revokeRefreshToken): each slot keeps its newest.
        mine = list(range(index, len(tokens), threads))
        with requests.Session() as http:
            turn = 0
            while mine and time.monotonic() < deadline:
                slot = mine[turn % len(mine)]
                started = time.monotonic()
                answer = http.post(
                    f"{realm.issuer}/protocol/openid-connect/token",
                    data={"grant_type": "refresh_token", "refresh_token": tokens[slot]},
                    auth=(CLIENT, realm.client_secrets[CLIENT]),
                    timeout=60,
                )
                elapsed = time.monotonic() - started
                with lock:
                    if answer.status_code == 200:
                        latencies.append(elapsed)
                        tokens[slot] = answer.json()["refresh_token"]
                    else:
                        failures += 1
                turn += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ordered = sorted(latencies)
    return {
        "refreshes": len(latencies),
        "failures": failures,
        "per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p95_ms": round(ordered[int(len(ordered) * 0.95)] * 1000, 1) if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="iacs-cluster-measure-"))
    tls = ensure_server_tls(run_dir / "tls")
    os.environ["REQUESTS_CA_BUNDLE"] = str(tls.ca_file)
    results: dict = {"load_average_start": os.getloadavg()}
    with start_postgres(run_dir / "postgres") as postgres:
        proxy_port, ports = free_port(), [free_port(), free_port()]
        public_url = f"https://127.0.0.1:{proxy_port}/auth"
        nodes: list[KeycloakInstance] = []
        try:
            for index, port in enumerate(ports):
                nodes.append(
                    start_keycloak(
                        run_dir / f"node-{index}",
                        admin_username="admin",
                        admin_password="measure-only-" + uuid.uuid4().hex,
                        port=port,
                        heap="-Xms256m -Xmx1g",
                        timeout=600,
                        node=ClusterNode(
                            db_url=postgres.jdbc_url,
                            db_username=postgres.username,
                            db_password=postgres.password,
                            tls=tls,
                            public_url=public_url,
                        ),
                    )
                )
            # Both nodes were bootstrapped with node 0's admin (the first start creates it).
            admin = SimpleNamespace(
                url=public_url, admin_username="admin", admin_password=nodes[0].admin_password
            )
            with start_proxy(
                run_dir / "proxy",
                tls=tls,
                port=proxy_port,
                keycloaks=[f"127.0.0.1:{port}" for port in ports],
            ):
                realm = apply_test_realm(admin, "measure")
                for _ in range(options.people):
                    realm.admin().create_user(
                        {
                            "username": f"p-{uuid.uuid4().hex[:8]}",
                            "enabled": True,
                            "credentials": [{"type": "password", "value": PASSWORD}],
                            "email": f"{uuid.uuid4().hex[:8]}@example.test",
                            "emailVerified": True,
                            "firstName": "P",
                            "lastName": "M",
                        }
                    )
                users = [user["username"] for user in realm.admin().get_users({"max": 1000})]
                tokens = [_sign_in(realm, username) for username in users[: options.people]]
                _refresh_load(realm, tokens, options.threads, 5)  # warm-up
                results["two_nodes"] = _refresh_load(
                    realm, tokens, options.threads, options.seconds
                )
                results["rss_mib_two_nodes"] = [_rss_mib(node) for node in nodes]
                nodes[1].stop()
                results["one_node"] = _refresh_load(realm, tokens, options.threads, options.seconds)
                results["rss_mib_one_node"] = _rss_mib(nodes[0])
        finally:
            for node in nodes:
                node.stop()
    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
