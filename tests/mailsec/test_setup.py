"""On a fresh database the first visit creates the first (admin) account and its team."""

from django.contrib.auth import get_user_model

from domains.models import Membership, Organization, Role

SETUP = {
    "username": "admin",
    "email": "admin@example.test",
    "password1": "a long passphrase 19",
    "password2": "a long passphrase 19",
    "organization": "Example Ops",
}


def test_first_visit_leads_to_setup(client, db):
    response = client.get("/", follow=True)
    assert [url for url, _ in response.redirect_chain] == ["/login/?next=/", "/setup/"]
    assert b"Set up mailsec" in response.content


def test_setup_creates_admin_and_team_and_logs_in(client, db):
    response = client.post("/setup/", SETUP)
    assert response.status_code == 302
    user = get_user_model().objects.get()
    assert (user.username, user.is_staff, user.is_superuser) == ("admin", True, True)
    team = Organization.objects.get()
    assert team.name == "Example Ops"
    assert Membership.objects.get(user=user, organization=team).role == Role.OWNER
    assert client.get("/domains/").status_code == 200  # logged in


def test_setup_refuses_bad_input(client, db):
    response = client.post("/setup/", {**SETUP, "password2": "something else 19"})
    assert response.status_code == 200
    assert not get_user_model().objects.exists()
    response = client.post("/setup/", {**SETUP, "organization": ""})
    assert response.status_code == 200
    assert not get_user_model().objects.exists()


def test_setup_is_gone_once_a_user_exists(client, alice):
    assert client.get("/setup/").url == "/login/"
    response = client.post("/setup/", {**SETUP, "username": "intruder"})
    assert response.status_code == 302
    assert response.url == "/login/"
    assert not get_user_model().objects.filter(username="intruder").exists()
    assert get_user_model().objects.count() == 1
    assert Organization.objects.count() == 1


def test_login_page_once_set_up(client, alice):
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/?next=/"
    assert b"Log in" in response.content
    response = client.post("/login/", {"username": "alice", "password": "correct horse 42"})
    assert response.status_code == 302
    assert response.url == "/domains/"


def test_logout_is_a_post(client, alice):
    client.force_login(alice)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert client.get("/domains/").status_code == 302


def test_healthz_answers_without_login(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    # JSON since /readyz came beside it (issue 16): each check with its own status.
    assert response.json() == {"status": "ok", "checks": {"database": {"status": "ok"}}}
