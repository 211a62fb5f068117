"""``python -m tests.sync.killable_worker MARKER``: the sync worker, stopped dead at the logout.

A test helper, not a test: the worker loop of ``iacs sync run`` (without its HTTP endpoint)
with the fault-injection hook ``sync.apply.FAULT_INJECTION.before_logout`` set to write
``MARKER`` and then block, so the test can SIGKILL the process at exactly that point (the
memberships removed in Keycloak, the logout not yet sent). Settings come from the ``IACS_*``
environment; Keycloak is reached as ``TEST_KEYCLOAK_ADMIN`` (url, admin, password, realm as a
JSON list), the master admin standing in for the worker's own client, as in the other tests.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from keycloak import KeycloakAdmin

from iacs.directory import Directory
from iacs.settings import load_settings
from sync.apply import FAULT_INJECTION
from sync.gateway import KeycloakGateway
from sync.worker import SyncWorker


def main(marker: Path) -> None:
    url, username, password, realm = json.loads(os.environ["TEST_KEYCLOAK_ADMIN"])

    def gateway() -> KeycloakGateway:
        admin = KeycloakAdmin(
            server_url=url + "/",
            username=username,
            password=password,
            realm_name=realm,
            user_realm_name="master",
        )
        return KeycloakGateway(admin, workers=2)

    def stop_dead(usernames: Sequence[str]) -> None:
        marker.write_text(json.dumps(list(usernames)), encoding="utf-8")
        while True:  # until SIGKILL
            time.sleep(60)

    FAULT_INJECTION.before_logout = stop_dead
    settings = load_settings()
    directory = Directory(settings.ldap, account="sync")
    SyncWorker(settings, directory=directory, gateway_factory=gateway).run()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
