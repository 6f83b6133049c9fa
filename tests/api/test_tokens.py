"""API tokens: stored hashed, shown once on the settings page, recorded in the audit log,
revoked there or with `manage.py api_token`; last use written at most once a minute."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from mailsec.api.models import ApiToken, token_hash
from mailsec.models import AuditAction, AuditEvent
from tests.api.conftest import api_client, token_for
from tests.conftest import client_for


def test_only_a_keyed_hash_and_the_start_are_stored(alice, acme):
    token, secret = ApiToken.issue(acme, alice, "ci", "read")
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert secret not in str(stored)
    assert stored["token_hash"] == token_hash(secret)
    assert stored["shown"] == secret[:14] and secret.startswith("mailsec_")
    assert len(secret) > 40


def test_the_hash_is_keyed_by_the_secret_key(alice, acme, settings):
    _, secret = ApiToken.issue(acme, alice, "ci", "read")
    assert ApiToken.authenticate(secret) is not None
    settings.SECRET_KEY = "another key, so another hash"
    assert ApiToken.authenticate(secret) is None


def test_last_use_is_written_at_most_once_a_minute(alice, acme, django_assert_num_queries):
    secret = token_for(alice, acme, "read")
    client = api_client(secret)
    client.get("/api/v1/finding-kinds/")
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the token's lookup, and no write
        client.get("/api/v1/finding-kinds/")
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/finding-kinds/")
    assert ApiToken.objects.get().last_used_at > first


def test_a_token_expires(alice, acme):
    secret = token_for(alice, acme, "read", expires_days=1)
    assert api_client(secret).get("/api/v1/domains/").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now())
    assert api_client(secret).get("/api/v1/domains/").status_code == 401


def test_an_inactive_user_s_token_stops(alice, acme):
    secret = token_for(alice, acme, "read")
    alice.is_active = False
    alice.save()
    assert api_client(secret).get("/api/v1/domains/").status_code == 401


# --- the settings page ---------------------------------------------------------------------


def make_on_the_page(client, **fields) -> str:
    response = client.post("/settings/tokens/", {"name": "ci", "scope": "write", **fields})
    assert response.status_code == 302
    return client.get(response.url).context["new_secret"]


def test_the_page_shows_a_new_token_once(alice, acme):
    client = client_for(alice)
    secret = make_on_the_page(client, expires_days="30")
    assert api_client(secret).get("/api/v1/domains/").status_code == 200
    token = ApiToken.objects.get()
    assert token.scope == "write" and token.user == alice and token.organization == acme
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    page = client.get("/settings/tokens/").content.decode()  # a reload
    assert secret not in page
    assert token.shown in page
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_ADDED)
    assert (event.actor, event.subject, event.detail["scope"]) == (alice, "ci", "write")


def test_a_viewer_makes_only_read_tokens(victor, acme):
    client = client_for(victor)
    response = client.post("/settings/tokens/", {"name": "ci", "scope": "write"})
    assert response.context["form"].errors["scope"]
    assert not ApiToken.objects.exists()
    make_on_the_page(client, scope="read")
    assert ApiToken.objects.get().scope == "read"


def test_revoking_on_the_page(alice, bob, acme):
    secret = make_on_the_page(client_for(bob))
    token = ApiToken.objects.get()
    # A member revokes only their own; an owner every token of the team.
    other = token_for(alice, acme)
    mine = ApiToken.objects.get(user=alice)
    assert client_for(bob).post(f"/settings/tokens/{mine.pk}/revoke/").status_code == 404
    assert api_client(other).get("/api/v1/domains/").status_code == 200
    response = client_for(alice).post(f"/settings/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    assert api_client(secret).get("/api/v1/domains/").status_code == 401
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_DELETED)
    assert (event.actor, event.subject, event.detail["owner"]) == (alice, "ci", "bob")


def test_members_see_their_own_tokens_and_owners_all(alice, bob, acme):
    token_for(bob, acme)
    bobs = ApiToken.objects.get(user=bob)
    token_for(alice, acme)
    alices = ApiToken.objects.get(user=alice)
    bob_page = client_for(bob).get("/settings/tokens/").content.decode()
    assert bobs.shown in bob_page and alices.shown not in bob_page
    alice_page = client_for(alice).get("/settings/tokens/").content.decode()
    assert bobs.shown in alice_page and alices.shown in alice_page


def test_another_team_s_token_cannot_be_revoked(alice, olga, globex):
    token_for(olga, globex)
    theirs = ApiToken.objects.get()
    assert client_for(alice).post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=theirs.pk).exists()


# --- the command ---------------------------------------------------------------------------


def run(*args) -> str:
    out = io.StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_a_working_token(alice, acme):
    secret = run("create", "alice", "Acme", "--scope", "write", "--expires", "7").strip()
    response = api_client(secret).post(
        "/api/v1/domains/", {"names": ["new.example"]}, content_type="application/json"
    )
    assert response.status_code == 201
    token = ApiToken.objects.get()
    assert token.expires_at - timezone.now() > timedelta(days=6)
    listed = run("list")
    assert token.shown in listed and secret not in listed and "alice" in listed
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_ADDED).exists()
    assert "Revoked" in run("revoke", str(token.pk))
    assert api_client(secret).get("/api/v1/domains/").status_code == 401
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_DELETED).exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["create", "nobody", "Acme"], "No user"),
        (["create", "olga", "Acme"], "not a member"),
        (["create", "victor", "Acme", "--scope", "write"], "viewer"),
        (["create", "alice", "Nowhere"], "No team"),
        (["create", "alice", "Acme", "--expires", "0"], "--expires"),
        (["revoke", "999"], "No token"),
    ],
)
def test_the_command_refuses(alice, victor, olga, acme, args, error):
    with pytest.raises(CommandError, match=error):
        run(*args)
    assert not ApiToken.objects.exists()
