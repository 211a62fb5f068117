"""Latency through the approval portal's JSON API: propagation, revocation and decisions.

Every request is made the way an API client makes it: a bearer access token issued by the realm
to the portal client, JSON over one ``requests.Session`` per caller. A person's tokens for the
application come from the application client of the catalogue (``pqri-feedback-reports``): the
claim looked for is that application's affiliation claim, in a token Keycloak issues after the
approval (refresh grant, which recomputes every claim, polled back to back).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from iacs.domain import Role, ScopeKind

from .app_logout import SampleApp, poll_refused
from .generate import BENCH_PASSWORD, Community
from .report import MEASURED, Measurement
from .stats import summarize
from .tokens import OidcClient, decode_claims, has_affiliation

POLL_TIMEOUT = 30.0
"""A sample that takes longer than this is counted as a timeout, not as a number."""


@dataclass(frozen=True)
class Candidate:
    """A person who may ask to be an End User of a group, and an administrator who may approve."""

    person: str
    organization_id: str
    group_id: str
    approver: str


def candidates(community: Community, count: int, seed: int, exclude: set[str]) -> list[Candidate]:
    """``count`` distinct people, each with a group they are not in and that group's UGA."""
    rng = random.Random(seed)
    holders = community.members_of()
    admins: dict[tuple[str, str], list[str]] = {}
    for membership, names in holders.items():
        if (
            membership.role is Role.USER_GROUP_ADMINISTRATOR
            and membership.scope_kind is ScopeKind.USER_GROUP
        ):
            admins[(membership.organization_id, membership.scope_id)] = names
    groups = sorted(admins)
    people = [p for p in community.people if p not in exclude]
    rng.shuffle(people)
    chosen: list[Candidate] = []
    for person in people:
        if len(chosen) == count:
            break
        mine = {(m.organization_id, m.scope_id) for m in community.memberships[person]}
        for _ in range(20):
            org_id, group_id = rng.choice(groups)
            approver = admins[(org_id, group_id)][0]
            if (org_id, group_id) not in mine and approver != person:
                chosen.append(Candidate(person, org_id, group_id, approver))
                break
    if len(chosen) < count:
        raise ValueError(f"the community has only {len(chosen)} candidates, not {count}")
    return chosen


class PortalApi:
    """The portal's JSON API as one person: bearer tokens from the portal client, renewed."""

    def __init__(self, base_url: str, tokens: OidcClient, username: str) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.tokens = tokens
        self.username = username
        self.session = requests.Session()
        self._renew_at = 0.0

    def _authorize(self) -> None:
        if time.monotonic() < self._renew_at:
            return
        token = self.tokens.password(self.username, BENCH_PASSWORD)
        self.session.headers["Authorization"] = f"Bearer {token['access_token']}"
        self._renew_at = time.monotonic() + max(10.0, token.get("expires_in", 300) - 60)

    def call(self, method: str, path: str, json: dict | None = None) -> requests.Response:
        self._authorize()
        response = self.session.request(method, self.base_url + path, json=json, timeout=60)
        if response.status_code >= 400:
            raise RuntimeError(
                f"{method} {path} as {self.username}: HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        return response

    def request_end_user(self, organization_id: str, group_id: str) -> str:
        body = {"kind": "end_user", "organization_id": organization_id, "group_id": group_id}
        return self.call("POST", "/requests", body).json()["id"]

    def decide(self, request_id: str, approve: bool) -> requests.Response:
        body = {"decision": "approve" if approve else "reject"}
        if not approve:
            body["reason"] = "benchmark rejection"
        return self.call("POST", f"/requests/{request_id}/decision", body)

    def revoke_end_user(self, person: str, organization_id: str, group_id: str) -> None:
        self.call(
            "POST",
            "/revocations",
            {
                "username": person,
                "role": Role.END_USER.value,
                "scope_kind": ScopeKind.USER_GROUP.value,
                "scope_id": group_id,
                "organization_id": organization_id,
                "reason": "benchmark revocation",
            },
        )


@dataclass
class Lifecycle:
    """Samples of one propagation-and-revocation run (seconds), and what went wrong."""

    propagation: list[float] = field(default_factory=list)
    revocation: list[float] = field(default_factory=list)
    app_refusal: list[float] = field(default_factory=list)
    """Revoke → the sample application refuses the person's next request (back-channel logout)."""
    propagation_timeouts: int = 0
    revocation_timeouts: int = 0
    app_refusal_timeouts: int = 0
    token_requests: int = 0
    errors: list[str] = field(default_factory=list)


def approve_and_revoke(
    portal_url: str,
    portal_tokens: Callable[[], OidcClient],
    app_tokens: OidcClient,
    chosen: list[Candidate],
    tick: Callable[[str], None] = lambda _: None,
    app: SampleApp | None = None,
) -> Lifecycle:
    """For each candidate: request, sign in to the app, approve → claim, revoke → refresh refused.

    The propagation sample runs from just before the approver's decision is sent to the end of
    the first token response that carries the new affiliation; the revocation sample from just
    before the revocation is sent to the end of the first refresh that is refused. With ``app``
    (the sample application, told of logouts through the back channel), the person's sign-in
    there is polled from another thread at the same time: the app-refusal sample runs from the
    same start to the first request the app refuses.
    """
    result = Lifecycle()
    approvers: dict[str, PortalApi] = {}
    for candidate in chosen:
        try:
            requester = PortalApi(portal_url, portal_tokens(), candidate.person)
            request_id = requester.request_end_user(candidate.organization_id, candidate.group_id)
            approver = approvers.setdefault(
                candidate.approver, PortalApi(portal_url, portal_tokens(), candidate.approver)
            )
            approver._authorize()
            signed_in = app_tokens.password(candidate.person, BENCH_PASSWORD)
            refresh_token = signed_in["refresh_token"]
            browser = app.adopt(signed_in) if app is not None else None
            wanted = (candidate.organization_id, candidate.group_id)

            started = time.perf_counter()
            approver.decide(request_id, approve=True)
            arrived, refresh_token, polls = _poll_claim(app_tokens, refresh_token, wanted)
            result.token_requests += polls
            if arrived is None:
                result.propagation_timeouts += 1
                tick("propagation timeout")
                continue
            result.propagation.append(arrived - started)

            if app is not None and browser is not None and app.refuses(browser):
                raise RuntimeError("the sample app refused the person before the revocation")
            started = time.perf_counter()
            approver.revoke_end_user(candidate.person, *wanted)
            watcher = _AppWatcher(app, browser) if app and browser else None
            refused, polls = _poll_refused(app_tokens, refresh_token)
            result.token_requests += polls
            if watcher is not None:
                app_refused = watcher.wait()
                if app_refused is None:
                    result.app_refusal_timeouts += 1
                else:
                    result.app_refusal.append(app_refused - started)
            if refused is None:
                result.revocation_timeouts += 1
            else:
                result.revocation.append(refused - started)
            tick(f"p={result.propagation[-1] * 1000:.0f} ms")
        except Exception as exc:  # one broken sample must not hide the others
            result.errors.append(f"{candidate.person}: {exc}")
            tick("error")
    return result


class _AppWatcher:
    """Polls the sample app in a thread, from its start, until it refuses the browser."""

    def __init__(self, app: SampleApp, browser: requests.Session) -> None:
        self.refused_at: float | None = None
        self._thread = threading.Thread(target=self._poll, args=(app, browser), daemon=True)
        self._thread.start()

    def _poll(self, app: SampleApp, browser: requests.Session) -> None:
        self.refused_at = poll_refused(app, browser, POLL_TIMEOUT)

    def wait(self) -> float | None:
        self._thread.join()
        return self.refused_at


def _poll_claim(
    client: OidcClient, refresh_token: str, wanted: tuple[str, str]
) -> tuple[float | None, str, int]:
    deadline = time.perf_counter() + POLL_TIMEOUT
    polls = 0
    while time.perf_counter() < deadline:
        response = client.refresh(refresh_token)
        polls += 1
        if response.status_code != 200:
            raise RuntimeError(f"refresh refused before revocation: {response.text[:200]}")
        tokens = response.json()
        refresh_token = tokens.get("refresh_token", refresh_token)
        if has_affiliation(decode_claims(tokens["access_token"]), *wanted):
            return time.perf_counter(), refresh_token, polls
    return None, refresh_token, polls


def _poll_refused(client: OidcClient, refresh_token: str) -> tuple[float | None, int]:
    deadline = time.perf_counter() + POLL_TIMEOUT
    polls = 0
    while time.perf_counter() < deadline:
        response = client.refresh(refresh_token)
        polls += 1
        if 400 <= response.status_code < 500:
            refused_with[f"{response.status_code} {_oauth_error(response)}"] += 1
            return time.perf_counter(), polls
        if response.status_code == 200:
            refresh_token = response.json().get("refresh_token", refresh_token)
    return None, polls


refused_with: Counter[str] = Counter()
"""How Keycloak refused the refresh after each revocation (status and OAuth error)."""


def _oauth_error(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""


def latency_measurement(
    key: str, title: str, target: str, samples: list[float], limit_quantile: str, limit: float
) -> Measurement:
    """A latency measurement with its summary in ms and the verdict on one quantile."""
    summary = summarize(samples)
    measurement = Measurement(key=key, title=title, target=target, samples=samples)
    if not samples:
        return measurement.fail("no sample completed")
    measurement.status = MEASURED
    measurement.numbers = {
        "samples": summary["count"],
        **{
            f"{name}_ms": round(summary[name] * 1000, 1)
            for name in ("p50", "p95", "p99", "mean", "max")
        },
    }
    quantile_value = summary[limit_quantile]
    measurement.met = quantile_value <= limit
    measurement.result = (
        f"p50 {summary['p50'] * 1000:.0f} ms, p95 {summary['p95'] * 1000:.0f} ms, "
        f"p99 {summary['p99'] * 1000:.0f} ms (n={summary['count']})"
    )
    return measurement


def decision_queues(
    community: Community, approvers: int, per_approver: int, seed: int, exclude: set[str]
) -> dict[str, list[Candidate]]:
    """``approvers`` distinct UGAs, each of a different group, with ``per_approver`` requesters."""
    rng = random.Random(seed)
    holders = community.members_of()
    groups = sorted(
        (m.organization_id, m.scope_id, names[0])
        for m, names in holders.items()
        if m.role is Role.USER_GROUP_ADMINISTRATOR and m.scope_kind is ScopeKind.USER_GROUP
    )
    rng.shuffle(groups)
    people = [p for p in community.people if p not in exclude]
    queues: dict[str, list[Candidate]] = {}
    for org_id, group_id, approver in groups:
        if len(queues) == approvers:
            break
        if approver in queues or approver in exclude:
            continue
        queue: list[Candidate] = []
        for person in rng.sample(people, len(people)):
            mine = {(m.organization_id, m.scope_id) for m in community.memberships[person]}
            if person != approver and (org_id, group_id) not in mine:
                queue.append(Candidate(person, org_id, group_id, approver))
                if len(queue) == per_approver:
                    break
        if len(queue) == per_approver:
            queues[approver] = queue
    if len(queues) < approvers:
        raise ValueError(f"only {len(queues)} approvers with {per_approver} requests each")
    return queues


@dataclass
class Decisions:
    latencies: list[float] = field(default_factory=list)
    approvals: list[float] = field(default_factory=list)
    rejections: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    submit_latencies: list[float] = field(default_factory=list)


def concurrent_decisions(
    portal_url: str,
    portal_tokens: Callable[[], OidcClient],
    community: Community,
    approvers: int,
    per_approver: int,
    seed: int,
    exclude: set[str],
    tick: Callable[[str], None] = lambda _: None,
) -> Decisions:
    """``approvers`` administrators deciding their queues at the same time, every other a reject.

    Requests are filed first (not timed as decisions); then all approvers start together on a
    barrier and each decides its own requests one after the other, so ``approvers`` decisions
    are in flight at once.
    """
    result = Decisions()
    queues = decision_queues(community, approvers, per_approver, seed, exclude)

    filed: dict[str, list[str]] = {}
    for approver, queue in queues.items():
        for candidate in queue:
            requester = PortalApi(portal_url, portal_tokens(), candidate.person)
            started = time.perf_counter()
            request_id = requester.request_end_user(candidate.organization_id, candidate.group_id)
            result.submit_latencies.append(time.perf_counter() - started)
            filed.setdefault(approver, []).append(request_id)
            tick("filed")
    apis = {name: PortalApi(portal_url, portal_tokens(), name) for name in filed}
    for api in apis.values():
        api._authorize()
    barrier = threading.Barrier(len(apis) + 1)
    lock = threading.Lock()

    def decide_all(approver: str) -> None:
        api = apis[approver]
        barrier.wait()
        for index, request_id in enumerate(filed[approver]):
            approve = index % 2 == 0
            started = time.perf_counter()
            try:
                api.decide(request_id, approve)
            except Exception as exc:
                with lock:
                    result.errors.append(f"{approver}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                result.latencies.append(elapsed)
                (result.approvals if approve else result.rejections).append(elapsed)
            tick("decided")

    threads = [threading.Thread(target=decide_all, args=(name,)) for name in apis]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall_seconds = time.perf_counter() - started
    return result
