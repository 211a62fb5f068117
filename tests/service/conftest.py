"""Service-level tests: ``AccessService`` over the real slapd (no Keycloak, no Flask).

The session's slapd and the clean tree come from ``tests/fixtures/slapd.py``; ``people`` adds
the test persons and the help desk, ``service`` is the service as the portal builds it, bound as
the portal's account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from iacs.directory import Directory
from iacs.domain import Membership, Role, ScopeKind
from iacs.enrollment import FileEnrollmentSource
from iacs.service import AccessService

ORG_ID = "org-123456789"


@dataclass
class World:
    """The service, the root account (operator and test setup) and the helpers of one test."""

    service: AccessService
    root: Directory
    make_person: Callable[..., object]

    def people(self, *usernames: str) -> None:
        for username in usernames:
            self.make_person(username)

    def help_desk(self, username: str = "helpdesk") -> str:
        self.make_person(username)
        self.root.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), username)
        return username

    def organization(self, security_official: str = "sofia", identifier: str = "123456789"):
        """A registered and approved organization with its Security Official."""
        request = self.service.register_organization(
            security_official, name="Lakeside", identifier=identifier, provider_type="hospital"
        )
        self.service.decide("helpdesk", request.id, approve=True)
        return request


@pytest.fixture
def world(directory: Directory, root_directory: Directory, make_person) -> World:
    service = AccessService(directory, FileEnrollmentSource())
    world = World(service, root_directory, make_person)
    world.help_desk()
    return world
