"""Failed logins are throttled per account and per address, on the login page and the admin's
(django-axes), with a clear message and a staff unlock."""

from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from tests.conftest import client_for, make_user

PASSWORD = "correct horse 42"  # the cast's (tests/conftest.py)


def fail(client, username, times, path="/login/"):
    for _ in range(times):
        response = client.post(path, {"username": username, "password": "wrong guess"})
        assert response.status_code in (200, 429)
    return response


def test_failed_logins_lock_the_account_and_a_right_password_is_then_refused(alice):
    limit = settings.AXES_FAILURE_LIMIT
    client = Client()
    assert fail(client, "alice", limit - 1).status_code == 200  # still just "wrong password"
    fail(client, "alice", 1)
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed log-ins" in page
    assert "ask an administrator" in page
    assert "_auth_user_id" not in client.session


def test_the_lock_holds_for_the_account_from_another_address(alice):
    fail(Client(REMOTE_ADDR="192.0.2.1"), "alice", settings.AXES_FAILURE_LIMIT)
    other = Client(REMOTE_ADDR="192.0.2.2")
    response = other.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429


def test_the_lock_holds_for_the_address_with_another_account(alice, bob):
    client = Client(REMOTE_ADDR="192.0.2.7")
    for index in range(settings.AXES_FAILURE_LIMIT):  # a different name every time
        client.post("/login/", {"username": f"guess{index}", "password": "x"})
    response = client.post("/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 429
    # bob from elsewhere is fine: it was the address that was locked.
    fine = Client(REMOTE_ADDR="192.0.2.8").post(
        "/login/", {"username": "bob", "password": PASSWORD}
    )
    assert fine.status_code == 302


def test_the_admin_login_is_throttled_too(alice):
    alice.is_staff = True
    alice.save()
    client = Client()
    fail(client, "alice", settings.AXES_FAILURE_LIMIT, path="/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 429


def test_staff_unlock_in_the_admin(alice):
    fail(Client(), "alice", settings.AXES_FAILURE_LIMIT)
    assert Client().post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 429
    staff = client_for(make_user("root", is_staff=True, is_superuser=True))
    listing = staff.get("/admin/axes/accessattempt/")
    assert "alice" in listing.content.decode()
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    assert attempts
    response = staff.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    back = Client().post("/login/", {"username": "alice", "password": PASSWORD})
    assert back.status_code == 302 and back["Location"] == "/domains/"


def test_logging_in_to_ones_own_account_does_not_lift_the_lock_on_another(alice, bob):
    client = Client(REMOTE_ADDR="192.0.2.9")
    limit = settings.AXES_FAILURE_LIMIT
    fail(client, "alice", limit - 1)
    assert client.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 302
    fail(Client(REMOTE_ADDR="192.0.2.10"), "alice", 1)  # the last try, from elsewhere
    response = Client().post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
