"""Profile changes of organizations (ORG-5), user groups and surrogate groups (UGA-3)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from iacs import policy
from iacs.domain import (
    Organization,
    SurrogateGroup,
    UserGroup,
)
from iacs.service import inputs
from iacs.service.base import ServiceBase, _describe, _directory_errors


class ProfileOperations(ServiceBase):
    """Updating profiles where the policy allows, with an audit record either way."""

    def update_organization_profile(
        self, username: str, org_id: str, **fields: str
    ) -> Organization:
        """ORG-5: the SO (and the help desk) update the organization's profile."""
        org_id = inputs.entity_id("organization", org_id)
        actor = self.actor(username)
        org = self._organization(org_id)
        changes: dict[str, Any] = {
            "name": inputs.text("name", fields.get("name", org.name)),
            "address": inputs.text(
                "address", fields.get("address", org.address), max_length=300, required=False
            ),
            "phone": inputs.text(
                "phone", fields.get("phone", org.phone), max_length=40, required=False
            ),
        }
        decision = policy.may_update_organization_profile(actor, org_id)
        self._require(actor, decision, "update_profile", organization_id=org_id)
        with _directory_errors():
            self.directory.update_organization_profile(org_id, **changes)
        self._audit(
            actor.username,
            "update_profile",
            "ok",
            None,
            _describe(changes, org),
            organization_id=org_id,
        )
        return replace(org, **changes)

    def update_group_profile(
        self, username: str, org_id: str, group_id: str, **fields: str
    ) -> UserGroup:
        """UGA-3: a UGA of the group, the SO/BSOs and the help desk update its profile."""
        org_id = inputs.entity_id("organization", org_id)
        group_id = inputs.entity_id("group", group_id)
        actor = self.actor(username)
        group = self._user_group(org_id, group_id)
        changes: dict[str, Any] = {
            "name": inputs.text("name", fields.get("name", group.name), max_length=80),
            "description": inputs.text(
                "description",
                fields.get("description", group.description),
                max_length=300,
                required=False,
            ),
        }
        decision = policy.may_update_group_profile(actor, org_id, group_id)
        self._require(
            actor, decision, "update_group_profile", organization_id=org_id, group_id=group_id
        )
        with _directory_errors():
            self.directory.update_user_group_profile(org_id, group_id, **changes)
        self._audit(
            actor.username,
            "update_group_profile",
            "ok",
            None,
            _describe(changes, group),
            organization_id=org_id,
            group_id=group_id,
        )
        return replace(group, **changes)

    def update_surrogate_profile(self, username: str, sug_id: str, **fields: str) -> SurrogateGroup:
        sug_id = inputs.entity_id("surrogate_group", sug_id)
        actor = self.actor(username)
        sug = self._surrogate_group(sug_id)
        changes: dict[str, Any] = {
            "name": inputs.text("name", fields.get("name", sug.name), max_length=80),
            "description": inputs.text(
                "description",
                fields.get("description", sug.description),
                max_length=300,
                required=False,
            ),
        }
        decision = policy.may_update_surrogate_profile(actor, sug_id)
        self._require(actor, decision, "update_surrogate_profile", surrogate_group_id=sug_id)
        with _directory_errors():
            self.directory.update_surrogate_group_profile(sug_id, **changes)
        self._audit(
            actor.username,
            "update_surrogate_profile",
            "ok",
            None,
            _describe(changes, sug),
            surrogate_group_id=sug_id,
        )
        return replace(sug, **changes)
