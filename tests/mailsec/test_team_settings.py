from domains.models import Membership, Organization, Role
from mailsec.models import Invitation
from tests.conftest import client_for


def test_settings_lists_members_and_roles(alice, bob, victor):
    page = client_for(victor).get("/settings/members/").content.decode()
    for name in ("alice", "bob", "victor"):
        assert name in page
    assert "Invite a member" not in page  # only owners manage


def test_members_and_viewers_cannot_manage_the_team(bob, victor, acme):
    for user in (bob, victor):
        response = client_for(user).post(
            "/settings/invitations/", {"email": "eve@example.test", "role": "owner"}
        )
        assert response.status_code == 403
        assert client_for(user).post("/settings/team/", {"name": "Pwned"}).status_code == 403
    assert not Invitation.objects.exists()
    acme.refresh_from_db()
    assert acme.name == "Acme"


def test_role_change_and_removal(alice, bob):
    membership = Membership.objects.get(user=bob)
    client = client_for(alice)
    client.post(f"/settings/members/{membership.pk}/role/", {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER
    client.post(f"/settings/members/{membership.pk}/remove/")
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_the_last_owner_stays(alice):
    membership = Membership.objects.get(user=alice)
    client = client_for(alice)
    client.post(f"/settings/members/{membership.pk}/role/", {"role": "member"})
    client.post(f"/settings/members/{membership.pk}/remove/")
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_another_teams_members_are_not_found(alice, olga):
    theirs = Membership.objects.get(user=olga)
    client = client_for(alice)
    assert (
        client.post(f"/settings/members/{theirs.pk}/role/", {"role": "viewer"}).status_code == 404
    )
    assert client.post(f"/settings/members/{theirs.pk}/remove/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == Role.OWNER


def test_only_staff_create_teams(alice, acme):
    client = client_for(alice)
    assert client.post("/settings/teams/new/", {"new-name": "Side"}).status_code == 403
    alice.is_staff = True
    alice.save()
    client = client_for(alice)
    client.post("/settings/teams/new/", {"new-name": "Side"})
    side = Organization.objects.get(name="Side")
    assert Membership.objects.get(organization=side).user == alice
    assert "Side" in client.get("/settings/members/").content.decode()
