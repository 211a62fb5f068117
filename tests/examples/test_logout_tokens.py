"""The sample app's logout-token checks, each on its own, with a key set of the test's own.

The same checks run against Keycloak's real logout tokens in ``test_sample_app.py``; here each
rule gets a token that breaks only that rule, which a real realm cannot be made to sign.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from examples.pqri_psr_app import SignInStore
from examples.pqri_psr_app.app import SignedIn
from examples.pqri_psr_app.claims import IacsClaims
from examples.pqri_psr_app.logout import (
    BACKCHANNEL_LOGOUT_EVENT,
    MAX_AGE,
    LogoutTokenRefused,
    LogoutTokenVerifier,
)

ISSUER = "http://127.0.0.1:8080/realms/iacs"
CLIENT = "psr"
KEY = RSAKey.generate_key(2048, parameters={"kid": "realm-key", "alg": "RS256", "use": "sig"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "realm-key", "alg": "RS256", "use": "sig"})


def _jwks(_force: bool = False) -> dict[str, Any]:
    return {"keys": [KEY.as_dict(private=False)]}


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "aud": CLIENT,
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "sub": "user-1",
        "sid": "session-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        "typ": "Logout",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], key: Any = KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": "realm-key", "typ": "logout+jwt"}, claims, key)


def _verifier() -> LogoutTokenVerifier:
    return LogoutTokenVerifier(ISSUER, CLIENT, _jwks)


def test_a_good_logout_token_names_the_session_and_the_person() -> None:
    request = _verifier().verify(_token(_claims()))
    assert (request.sub, request.sid) == ("user-1", "session-1")


@pytest.mark.parametrize(
    ("why", "claims"),
    [
        ("wrong aud", _claims(aud="pqri-feedback-reports")),
        ("wrong iss", _claims(iss="http://127.0.0.1:8080/realms/other")),
        ("no iat", _claims(iat=None)),
        ("old iat", _claims(iat=int(time.time()) - MAX_AGE - 60)),
        ("iat in the future", _claims(iat=int(time.time()) + 3600)),
        ("expired", _claims(exp=int(time.time()) - 120)),
        ("no jti", _claims(jti=None)),
        ("no events", _claims(events=None)),
        ("other event", _claims(events={"http://example.test/other": {}})),
        ("event not an object", _claims(events={BACKCHANNEL_LOGOUT_EVENT: "yes"})),
        ("nonce", _claims(nonce="n-0S6_WzA2Mj")),
        ("neither sub nor sid", _claims(sub=None, sid=None)),
    ],
)
def test_a_logout_token_breaking_one_rule_is_refused(why: str, claims: dict[str, Any]) -> None:
    with pytest.raises(LogoutTokenRefused):
        _verifier().verify(_token(claims))


def test_forged_unsigned_and_hmac_tokens_are_refused() -> None:
    verifier = _verifier()
    with pytest.raises(LogoutTokenRefused, match="signature"):
        verifier.verify(_token(_claims(), key=OTHER))  # the realm's kid, another key
    unsigned = ".".join(_token(_claims()).split(".")[:2]) + "."  # the signature cut off
    with pytest.raises(LogoutTokenRefused, match="signature"):
        verifier.verify(unsigned)
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    with pytest.raises(LogoutTokenRefused, match="signature"):
        verifier.verify(f"{header.decode()}.{body.decode()}.")
    secret = OctKey.generate_key(256, parameters={"kid": "realm-key"})
    hmac = jwt.encode({"alg": "HS256", "kid": "realm-key"}, _claims(), secret)
    with pytest.raises(LogoutTokenRefused, match="signature"):
        verifier.verify(hmac)
    with pytest.raises(LogoutTokenRefused):
        verifier.verify("not a token")


def test_a_replayed_logout_token_is_refused_and_ends_nothing() -> None:
    verifier, store = _verifier(), SignInStore()
    token = _token(_claims())
    request = verifier.verify(token)
    assert store.end(sub=request.sub, sid=request.sid) == 0
    store.put("cookie-1", _signed_in("user-1", "session-1"))  # signed in again, same session id
    with pytest.raises(LogoutTokenRefused, match="replayed"):
        verifier.verify(token)
    assert store.get("cookie-1") is not None


def test_an_unknown_key_fetches_the_key_set_again_once() -> None:
    fetched: list[bool] = []
    rotated = RSAKey.generate_key(2048, parameters={"kid": "new-key", "alg": "RS256"})

    def jwks(force: bool) -> dict[str, Any]:
        fetched.append(force)
        keys = [KEY.as_dict(private=False)] + ([rotated.as_dict(private=False)] if force else [])
        return {"keys": keys}

    token = jwt.encode({"alg": "RS256", "kid": "new-key"}, _claims(), rotated)
    assert LogoutTokenVerifier(ISSUER, CLIENT, jwks).verify(token).sid == "session-1"
    assert fetched == [False, True]


def _signed_in(sub: str, sid: str | None) -> SignedIn:
    claims = IacsClaims(username=sub, app_roles=frozenset(), affiliations=())
    return SignedIn(claims, "id-token", None, time.time() + 300, sub, sid)


def test_the_store_ends_the_named_session_or_every_session_of_the_person() -> None:
    store = SignInStore()
    store.put("a", _signed_in("user-1", "session-1"))
    store.put("b", _signed_in("user-1", "session-2"))
    store.put("c", _signed_in("user-2", "session-3"))
    assert store.end(sub="user-1", sid="session-1") == 1
    assert store.get("a") is None and store.get("b") is not None
    assert store.end(sub="user-2", sid="session-2") == 0  # a sid of someone else: nothing
    assert store.end(sub="user-1", sid=None) == 1
    assert store.get("c") is not None


def test_a_refresh_does_not_revive_a_sign_in_ended_meanwhile() -> None:
    store = SignInStore()
    old = _signed_in("user-1", "session-1")
    store.put("a", old)
    store.end(sub=None, sid="session-1")
    assert not store.replace("a", old, _signed_in("user-1", "session-1"))
    assert store.get("a") is None
