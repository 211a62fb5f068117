"""Stop-gap realm for the portal tests until engineer A's realm fixture lands.

TODO(keycloak realm fixture): replace with ``tests/fixtures/keycloak.py``'s session ``keycloak``
fixture and the realm applied from ``keycloak_config/realm.json`` with ``with_federation=True``.
Until then this makes, per test, a realm with what the portal relies on: the confidential
``iacs-portal`` client (standard flow only, PKCE S256 required, redirect ``<portal>/auth/callback``,
an audience mapper so its access tokens carry ``aud: iacs-portal``) and LDAP user federation
against the test's slapd (people are never created in Keycloak directly).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass

CLIENT_ID = "iacs-portal"


@dataclass(frozen=True)
class PortalRealm:
    """Where the portal's realm is and the secret of its client."""

    url: str
    realm: str
    client_secret: str


def create_portal_realm(admin, realm: str, portal_url: str, slapd) -> PortalRealm:
    """Create ``realm`` with the portal client and LDAP federation; ``admin`` is on master."""
    secret = secrets.token_urlsafe(24)
    admin.create_realm(
        {
            "realm": realm,
            "enabled": True,
            "accessTokenLifespan": 300,
            "registrationAllowed": False,
            "clients": [
                {
                    "clientId": CLIENT_ID,
                    "enabled": True,
                    "publicClient": False,
                    "secret": secret,
                    "standardFlowEnabled": True,
                    "directAccessGrantsEnabled": False,
                    "implicitFlowEnabled": False,
                    "serviceAccountsEnabled": False,
                    "fullScopeAllowed": False,
                    "redirectUris": [f"{portal_url}/auth/callback"],
                    "webOrigins": [portal_url],
                    "attributes": {
                        "pkce.code.challenge.method": "S256",
                        "post.logout.redirect.uris": f"{portal_url}/*",
                    },
                    "protocolMappers": [
                        {
                            "name": "portal audience",
                            "protocol": "openid-connect",
                            "protocolMapper": "oidc-audience-mapper",
                            "config": {
                                "included.client.audience": CLIENT_ID,
                                "access.token.claim": "true",
                                "id.token.claim": "false",
                            },
                        }
                    ],
                }
            ],
        },
        skip_exists=False,
    )
    admin.change_current_realm(realm)
    realm_id = admin.get_realm(realm)["id"]
    base = slapd.base_dn
    admin.create_component(
        {
            "name": "iacs-directory",
            "providerId": "ldap",
            "providerType": "org.keycloak.storage.UserStorageProvider",
            "parentId": realm_id,
            "config": {
                "enabled": ["true"],
                "priority": ["0"],
                "vendor": ["other"],
                "editMode": ["WRITABLE"],
                "importEnabled": ["true"],
                "syncRegistrations": ["true"],
                "connectionUrl": [slapd.url],
                "usersDn": [f"ou=people,{base}"],
                "bindDn": [slapd.service_dn("keycloak")],
                "bindCredential": [slapd.service_passwords["keycloak"]],
                "authType": ["simple"],
                "usernameLDAPAttribute": ["uid"],
                "rdnLDAPAttribute": ["uid"],
                "uuidLDAPAttribute": ["entryUUID"],
                "userObjectClasses": ["inetOrgPerson"],
                "searchScope": ["1"],
                "pagination": ["false"],
                "usePasswordModifyExtendedOp": ["true"],
                "trustEmail": ["true"],
                "cachePolicy": ["NO_CACHE"],
            },
        }
    )
    with contextlib.suppress(Exception):  # profiles are complete (cn, sn, mail), but be sure
        action = admin.get_required_action_by_alias("VERIFY_PROFILE")
        admin.update_required_action("VERIFY_PROFILE", {**action, "enabled": False})
    admin.change_current_realm("master")
    return PortalRealm(
        url=admin.connection.server_url.rstrip("/"), realm=realm, client_secret=secret
    )
