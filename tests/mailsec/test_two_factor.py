"""Two-factor sign-in: enrolment, the code after the password, single-use recovery codes, and a
team that requires it."""

import time

from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from mailsec.models import AuditEvent, TeamSecurity
from tests.conftest import client_for

PASSWORD = "correct horse 42"


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """What the authenticator app shows (a later step: each step's code works once)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrol(client) -> tuple[TOTPDevice, list[str]]:
    """Set up the authenticator through the pages; returns it and the recovery codes shown."""
    assert client.post("/account/two-factor/enrol/").status_code == 302
    page = client.get("/account/two-factor/").content.decode()
    assert "<svg" in page  # the QR code
    device = TOTPDevice.objects.get(confirmed=False)
    response = client.post("/account/two-factor/enrol/", {"code": code_for(device)})
    assert response["Location"] == "/account/two-factor/codes/"
    shown = client.get("/account/two-factor/codes/").content.decode()
    block = shown.split('id="recovery-codes">')[1].split("</pre>")[0]
    codes = block.split()
    device.refresh_from_db()
    return device, codes


def log_in(username="alice") -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_enrolment(alice):
    client = client_for(alice)
    device, codes = enrol(client)
    assert device.confirmed
    assert len(codes) == 10 and len(set(codes)) == 10
    assert sorted(codes) == sorted(StaticToken.objects.values_list("token", flat=True))
    # The codes are shown once only.
    assert client.get("/account/two-factor/codes/")["Location"] == "/account/two-factor/"
    assert "is <strong>on</strong>" in client.get("/account/two-factor/").content.decode()
    assert client.get("/domains/").status_code == 200  # the enrolling session is verified


def test_a_wrong_code_does_not_enrol(alice):
    client = client_for(alice)
    client.post("/account/two-factor/enrol/")
    device = TOTPDevice.objects.get(confirmed=False)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    client.post("/account/two-factor/enrol/", {"code": wrong})
    device.refresh_from_db()
    assert not device.confirmed
    assert not StaticToken.objects.exists()


def test_login_needs_the_code(alice):
    device, _ = enrol(client_for(alice))
    client = log_in()
    response = client.get("/domains/")
    assert response.status_code == 302
    assert response["Location"] == "/login/verify/?next=%2Fdomains%2F"
    for path in ("/settings/", "/reports/", "/admin/", "/account/two-factor/"):
        assert client.get(path)["Location"].startswith("/login/verify/"), path
    bad = client.post("/login/verify/", {"code": "000000", "next": "/settings/"})
    assert bad.status_code == 200 and "not right" in bad.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # the wrong code made the device wait a second before the next
    good = client.post("/login/verify/", {"code": code_for(device, 1), "next": "/settings/"})
    assert good["Location"] == "/settings/"
    assert client.get("/domains/").status_code == 200


def test_a_code_works_once(alice):
    device, _ = enrol(client_for(alice))
    code = code_for(device, 1)
    first = log_in()
    assert first.post("/login/verify/", {"code": code})["Location"] == "/domains/"
    second = log_in()
    assert second.post("/login/verify/", {"code": code}).status_code == 200
    assert second.get("/domains/").status_code == 302


def test_a_recovery_code_works_once(alice):
    _, codes = enrol(client_for(alice))
    first = log_in()
    assert first.post("/login/verify/", {"code": codes[0].upper()})["Location"] == "/domains/"
    assert first.get("/domains/").status_code == 200
    assert StaticToken.objects.count() == 9
    second = log_in()
    assert second.post("/login/verify/", {"code": codes[0]}).status_code == 200
    assert second.get("/domains/").status_code == 302


def test_the_verify_page_never_redirects_off_site(alice):
    _, codes = enrol(client_for(alice))
    client = log_in()
    response = client.post("/login/verify/", {"code": codes[1], "next": "https://evil.test/"})
    assert response["Location"] == "/domains/"


def test_a_team_requiring_2fa_sends_members_without_it_to_enrolment(alice, bob, acme, olga):
    owner = client_for(alice)
    # An owner must have it before requiring it.
    owner.post("/settings/security/", {"require_two_factor": "on"})
    assert not TeamSecurity.requires_two_factor(acme)
    enrol(owner)
    owner.post("/settings/security/", {"require_two_factor": "on"})
    assert TeamSecurity.requires_two_factor(acme)
    assert AuditEvent.objects.filter(organization=acme, action="team.two_factor_required").exists()

    member = log_in("bob")
    for path in ("/domains/", "/settings/", "/reports/", "/admin/"):
        assert member.get(path)["Location"] == "/account/two-factor/", path
    page = member.get("/account/two-factor/").content.decode()
    assert "requires two-factor sign-in" in page
    enrol(member)
    assert member.get("/domains/").status_code == 200
    # and bob cannot turn it off while the team requires it
    member.post("/account/two-factor/disable/")
    assert TOTPDevice.objects.filter(user=bob, confirmed=True).exists()
    # Another team's members are not concerned.
    assert client_for(olga).get("/domains/").status_code == 200


def test_a_viewer_cannot_change_the_policy(victor, acme):
    assert (
        client_for(victor).post("/settings/security/", {"require_two_factor": "on"}).status_code
        == 403
    )
    assert not TeamSecurity.requires_two_factor(acme)


def test_turning_it_off(alice):
    client = client_for(alice)
    enrol(client)
    client.post("/account/two-factor/disable/")
    assert not TOTPDevice.objects.exists() and not StaticToken.objects.exists()
    assert log_in().get("/domains/").status_code == 200


def test_an_open_session_is_held_as_soon_as_the_team_requires_it(alice, bob, acme):
    member = log_in("bob")
    assert member.get("/domains/").status_code == 200
    owner = client_for(alice)
    enrol(owner)
    owner.post("/settings/security/", {"require_two_factor": "on"})
    assert member.get("/domains/")["Location"] == "/account/two-factor/"


def test_the_admin_login_needs_the_code_too(alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    device, _ = enrol(client_for(alice))
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "alice", "password": PASSWORD}
    )
    assert response["Location"] == "/admin/"
    assert client.get("/admin/")["Location"] == "/login/verify/?next=%2Fadmin%2F"
    assert client.get("/admin/auth/user/").status_code == 302
    client.post("/login/verify/", {"code": code_for(device, 1)})
    assert client.get("/admin/auth/user/").status_code == 200
