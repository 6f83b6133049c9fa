"""Invitations instead of adding accounts by user name; the team a new session lands in."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from domains.models import Membership, Organization, Role
from mailsec.models import Invitation
from tests.conftest import client_for, make_user
from tests.domains.test_alerts import smtp  # noqa: F401 (a fixture: a real SMTP server)


def invite(client, email="carol@example.test", role="viewer") -> str:
    """Invite through the settings page; returns the link shown once to the owner."""
    response = client.post("/settings/invitations/", {"email": email, "role": role})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert client.get(response["Location"]).status_code == 404  # shown once
    link = page.split('id="invitation-link">')[1].split("</pre>")[0]
    assert link.startswith("http://testserver/invite/")
    return link.removeprefix("http://testserver")


def test_an_invitee_makes_an_account_with_the_link(alice, acme):
    path = invite(client_for(alice))
    visitor = Client()
    page = visitor.get(path).content.decode()
    assert "Join Acme" in page and "carol@example.test" in page
    response = visitor.post(
        path,
        {
            "username": "carol",
            "email": "carol@example.test",
            "password1": "pass phrase 4 carol",
            "password2": "pass phrase 4 carol",
        },
    )
    assert response["Location"] == "/domains/"
    carol = get_user_model().objects.get(username="carol")
    assert Membership.objects.get(user=carol, organization=acme).role == Role.VIEWER
    assert visitor.get("/domains/").status_code == 200  # signed in


def test_a_new_account_needs_a_good_password(alice):
    path = invite(client_for(alice))
    Client().post(path, {"username": "dave", "password1": "123", "password2": "123"})
    assert not get_user_model().objects.filter(username="dave").exists()
    assert Invitation.objects.pending().count() == 1  # still usable


def test_an_existing_account_joins_with_its_consent(alice, olga, acme):
    path = invite(client_for(alice), email="olga@example.test", role="member")
    assert Membership.objects.filter(user=olga).count() == 1  # nothing happens without olga
    client = client_for(olga)
    assert "Join as olga" in client.get(path).content.decode()
    assert client.post(path)["Location"] == "/domains/"
    assert Membership.objects.get(user=olga, organization=acme).role == Role.MEMBER
    assert client.get("/settings/members/").context["organization"] == acme  # now working there


def test_a_link_works_once(alice, olga, acme):
    path = invite(client_for(alice))
    assert client_for(olga).post(path).status_code == 302
    eve = make_user("eve")
    response = client_for(eve).post(path)
    assert response.status_code == 404
    assert "no longer valid" in response.content.decode()
    assert not Membership.objects.filter(user=eve).exists()


def test_an_expired_or_revoked_link_is_refused(alice, olga, acme):
    owner = client_for(alice)
    path = invite(owner)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_for(olga).post(path).status_code == 404
    path = invite(owner, email="x@example.test")
    invitation = Invitation.objects.pending().get()
    assert owner.post(f"/settings/invitations/{invitation.pk}/revoke/").status_code == 302
    assert client_for(olga).post(path).status_code == 404
    assert not Membership.objects.filter(user=olga, organization=acme).exists()
    assert Client().get("/invite/not-a-token/").status_code == 404


def test_inviting_tells_nothing_about_existing_accounts(alice, olga):
    owner = client_for(alice)
    for email in ("olga@example.test", "nobody@example.test"):
        response = owner.post("/settings/invitations/", {"email": email, "role": "member"})
        page = owner.get(response["Location"]).content.decode()
        assert "olga" not in page.replace("olga@example.test", "")
        assert "exist" not in page
    # There is no way left to add an account by its user name.
    assert owner.post("/settings/members/add/", {"username": "olga"}).status_code == 404


def test_only_owners_invite_and_revoke(alice, bob, victor, acme):
    invite(client_for(alice))
    invitation = Invitation.objects.get()
    for user in (bob, victor):
        client = client_for(user)
        assert client.post("/settings/invitations/", {"email": "e@example.test"}).status_code == 403
        assert client.post(f"/settings/invitations/{invitation.pk}/revoke/").status_code == 403
    assert Invitation.objects.count() == 1


def test_another_teams_invitation_is_not_found(alice, olga):
    invite(client_for(olga))
    theirs = Invitation.objects.get()
    assert client_for(alice).post(f"/settings/invitations/{theirs.pk}/revoke/").status_code == 404
    assert Invitation.objects.pending().count() == 1


def test_the_invitation_is_e_mailed_when_smtp_is_configured(smtp, alice):  # noqa: F811
    path = invite(client_for(alice))
    (message,) = smtp.messages()
    assert message["To"] == "carol@example.test"
    assert "Acme" in message["Subject"]
    assert path in message.get_content()


# --- the team a new session works in --------------------------------------------------------


def test_a_new_session_lands_in_the_team_last_chosen(alice, acme):
    zeta = Organization.objects.create(name="Zeta")
    Membership.objects.create(organization=zeta, user=alice, role=Role.VIEWER)
    client = client_for(alice)
    assert client.get("/settings/members/").context["organization"] == acme  # nothing chosen yet
    client.post("/team/switch/", {"organization": zeta.pk})
    # A new session (another browser): still Zeta, even when a rename puts another team first.
    acme.name = "Aardvark"
    acme.save()
    assert client_for(alice).get("/settings/members/").context["organization"] == zeta
    client_for(alice).post("/team/switch/", {"organization": acme.pk})
    assert client_for(alice).get("/settings/members/").context["organization"] == acme


def test_a_rename_does_not_move_anybody(alice, acme):
    """The first by name used to win: a team renamed to sort first took over new sessions."""
    mallory_team = Organization.objects.create(name="Zeta")
    Membership.objects.create(organization=mallory_team, user=alice, role=Role.VIEWER)
    client_for(alice).post("/team/switch/", {"organization": acme.pk})
    mallory_team.name = "AAA"
    mallory_team.save()
    assert client_for(alice).get("/settings/members/").context["organization"] == acme
