"""Every endpoint, for each role and kind of credential: the owner, a member and a viewer
(signed in, and with tokens of either scope), an expired and a revoked token, and another
team's token. Reading needs a member of the team; writing a role that edits and (for a token)
read-write scope; testing an alert channel an owner."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from domains.models import Domain
from mailsec.api.models import ApiToken
from tests.api.conftest import api_client, token_for
from tests.api.world import AGGREGATE, world_of
from tests.conftest import client_for

READ, EDIT, MANAGE = "read", "edit", "manage"


def fresh_domain(world) -> int:
    """A domain of its own for a request that uses one up (deleting it, "check now")."""
    count = Domain.objects.filter(organization=world.domain.organization).count()
    return Domain.objects.create(
        organization=world.domain.organization, name=f"fresh{count}.example"
    ).pk


def upload_body():
    return {"files": [SimpleUploadedFile(AGGREGATE.name, AGGREGATE.read_bytes())]}


# (what it needs, method, path from the world, body, status when allowed, is about one object)
ENDPOINTS = [
    (READ, "get", lambda w: "/api/v1/domains/", None, 200, False),
    (READ, "get", lambda w: f"/api/v1/domains/{w.domain.pk}/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/domains/{w.domain.pk}/runs/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/domains/{w.domain.pk}/runs/latest/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/domains/{w.domain.pk}/servers/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/domains/{w.domain.pk}/report-summary/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/domains/{w.domain.pk}/report-series/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/domains/{w.domain.pk}/senders/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/runs/{w.run.pk}/", None, 200, True),
    (READ, "get", lambda w: f"/api/v1/checks/{w.check.pk}/", None, 200, True),
    (READ, "get", lambda w: "/api/v1/finding-kinds/", None, 200, False),
    (READ, "get", lambda w: "/api/v1/finding-kinds/spf.missing/", None, 200, False),
    (READ, "get", lambda w: "/api/v1/reports/aggregate/", None, 200, False),
    (READ, "get", lambda w: f"/api/v1/reports/aggregate/{w.aggregate.pk}/", None, 200, True),
    (
        READ,
        "get",
        lambda w: f"/api/v1/reports/aggregate/{w.aggregate.pk}/records/",
        None,
        200,
        True,
    ),
    (READ, "get", lambda w: "/api/v1/reports/tls/", None, 200, False),
    (READ, "get", lambda w: f"/api/v1/reports/tls/{w.tls.pk}/", None, 200, True),
    (READ, "get", lambda w: "/api/v1/reports/failure/", None, 200, False),
    (READ, "get", lambda w: f"/api/v1/reports/failure/{w.failure.pk}/", None, 200, True),
    (READ, "get", lambda w: "/api/v1/uploads/", None, 200, False),
    (READ, "get", lambda w: f"/api/v1/uploads/{w.upload.pk}/", None, 200, True),
    (READ, "get", lambda w: "/api/v1/channels/", None, 200, False),
    (READ, "get", lambda w: f"/api/v1/channels/{w.channel.pk}/", None, 200, True),
    (READ, "get", lambda w: "/api/v1/schema/", None, 200, False),
    (EDIT, "post", lambda w: "/api/v1/domains/", {"names": ["new.example"]}, 201, False),
    (EDIT, "patch", lambda w: f"/api/v1/domains/{w.domain.pk}/", {"notes": "x"}, 200, True),
    (EDIT, "delete", lambda w: f"/api/v1/domains/{fresh_domain(w)}/", None, 204, True),
    (EDIT, "post", lambda w: f"/api/v1/domains/{fresh_domain(w)}/check/", None, 202, True),
    (EDIT, "post", lambda w: "/api/v1/uploads/", upload_body, 202, False),
    (MANAGE, "post", lambda w: f"/api/v1/channels/{w.channel.pk}/test/", None, 200, True),
]

# Who asks, and what they may do: (credential, may read, may edit, may manage).
ACTORS = {
    "owner signed in": (True, True, True),
    "member signed in": (True, True, False),
    "viewer signed in": (True, False, False),
    "owner's read-write token": (True, True, True),
    "owner's read token": (True, False, False),
    "member's read-write token": (True, True, False),
    "viewer's read token": (True, False, False),
    "viewer's read-write token": (True, False, False),  # the role caps the scope
}


def client_of(actor: str, cast) -> Client:
    alice, bob, victor, acme = cast
    users = {"owner": alice, "member": bob, "viewer": victor}
    who, _, how = actor.partition(" ")
    user = users[who.removesuffix("'s")]
    if how == "signed in":
        return client_for(user)
    scope = "write" if "read-write" in how else "read"
    return api_client(token_for(user, acme, scope))


@pytest.fixture
def world(acme, alice, acme_domain):
    return world_of(acme, acme_domain, alice)


@pytest.fixture
def cast(alice, bob, victor, acme):
    return alice, bob, victor, acme


def send(client: Client, method: str, path: str, body):
    body = body() if callable(body) else body
    if method == "post" and path == "/api/v1/uploads/":
        return client.post(path, body)
    return getattr(client, method)(path, body, content_type="application/json")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]}-{e[1]}-{ENDPOINTS.index(e)}")
@pytest.mark.parametrize("actor", ACTORS)
def test_each_role_and_scope(world, cast, endpoint, actor):
    needs, method, path_of, body, allowed_status, _ = endpoint
    may_read, may_edit, may_manage = ACTORS[actor]
    allowed = {READ: may_read, EDIT: may_edit, MANAGE: may_manage}[needs]
    path = path_of(world)
    response = send(client_of(actor, cast), method, path, body)
    expected = allowed_status if allowed else 403
    assert response.status_code == expected, f"{actor}: {method} {path}: {response.content[:300]}"


@pytest.fixture
def bad_tokens(alice, acme, olga, globex):
    expired = token_for(alice, acme, "write")
    ApiToken.objects.filter(user=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked = token_for(alice, acme, "write", expires_days=30)
    ApiToken.objects.filter(expires_at__gt=timezone.now()).delete()
    return {"expired": expired, "revoked": revoked, "other team": token_for(olga, globex)}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]}-{e[1]}-{ENDPOINTS.index(e)}")
def test_expired_revoked_and_other_teams_tokens(world, bad_tokens, endpoint):
    _, method, path_of, body, _, about_one = endpoint
    for kind in ("expired", "revoked"):
        response = send(api_client(bad_tokens[kind]), method, path_of(world), body)
        assert response.status_code == 401, f"{kind} token: {method} {path_of(world)}"
        assert b"Invalid token." in response.content  # (the schema answers in YAML)
    if about_one:
        response = send(api_client(bad_tokens["other team"]), method, path_of(world), body)
        assert response.status_code == 404, f"other team: {method} {path_of(world)}"


def test_a_token_stops_when_its_user_leaves_the_team(world, alice, bob, acme):
    secret = token_for(bob, acme, "write")
    client = api_client(secret)
    assert client.get("/api/v1/domains/").status_code == 200
    bob.memberships.get(organization=acme).delete()
    assert client.get("/api/v1/domains/").status_code == 401


def test_a_token_follows_its_user_s_role(world, bob, acme):
    client = api_client(token_for(bob, acme, "write"))
    path = f"/api/v1/domains/{world.domain.pk}/"
    assert client.patch(path, {"notes": "a"}, content_type="application/json").status_code == 200
    bob.memberships.filter(organization=acme).update(role="viewer")
    assert client.patch(path, {"notes": "b"}, content_type="application/json").status_code == 403


def test_session_writes_need_the_csrf_token(world, alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    path = f"/api/v1/domains/{world.domain.pk}/"
    response = client.patch(path, {"notes": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    client.get("/settings/tokens/")  # any page sets the cookie
    token = client.cookies["csrftoken"].value
    response = client.patch(
        path, {"notes": "x"}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200
