"""Response headers and small leaks: CSP, Permissions-Policy, no-store on signed-in pages,
HTTPS (redirect and HSTS), `check --deploy`, the webhook secret, and ids out of range."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from domains.models import AlertChannel, Membership
from mailsec.ids import MAX_ID, parse_id
from tests.conftest import client_for, make_user

ROOT = Path(__file__).resolve().parents[2]
TOO_BIG = str(MAX_ID + 1)  # 9223372036854775808


def csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


def test_pages_allow_only_their_own_scripts_and_styles(alice, acme_domain):
    for path in ("/domains/", f"/domains/{acme_domain.pk}/", "/settings/members/", "/reports/"):
        policy = csp(client_for(alice).get(path))
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["default-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "script-src" in csp(Client().get("/login/"))


TEMPLATES = ROOT / "templates"
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE
)


def test_no_template_has_inline_script_or_style():
    """The policy would block them: every script and style lives in static/."""
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in INLINE.finditer(path.read_text())
    ]
    assert offenders == []


def test_signed_in_pages_are_not_stored(alice, acme_domain):
    client = client_for(alice)
    for path in ("/domains/", f"/domains/{acme_domain.pk}/", "/settings/members/", "/reports/"):
        assert "no-store" in client.get(path)["Cache-Control"], path
    assert "no-store" not in Client().get("/healthz").get("Cache-Control", "")


def test_a_path_that_matches_nothing_is_a_404_for_a_signed_in_user(alice):
    """The navigation once failed to render without a matched URL (a 500)."""
    response = client_for(alice).get("/nothing/here/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_permissions_policy_turns_off_device_features(alice):
    header = client_for(alice).get("/domains/")["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in header


def production_env(tmp_path, **extra) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "MAILSEC_VAR_DIR": str(tmp_path / "var"),
        "MAILSEC_SECRET_KEY": secrets.token_urlsafe(50),
        "MAILSEC_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MAILSEC_ALLOWED_HOSTS": "mailsec.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    return env | extra


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_reports_nothing_with_https_on(tmp_path):
    done = manage(production_env(tmp_path, MAILSEC_HTTPS="on"), "check", "--deploy")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    # Without HTTPS the same check does complain: it is not a check that never fails.
    plain = manage(production_env(tmp_path), "check", "--deploy")
    assert "security.W008" in plain.stdout + plain.stderr


def test_https_on_sets_the_redirect_and_hsts(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SECURE_PROXY_SSL_HEADER, s.SECURE_REDIRECT_EXEMPT)"
    )
    done = manage(production_env(tmp_path, MAILSEC_HTTPS="on"), "shell", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == (
        "True 31536000 True ('HTTP_X_FORWARDED_PROTO', 'https') ['^healthz$']"
    )


@pytest.fixture
def https_on(settings):
    """The settings MAILSEC_HTTPS=on makes (checked just above against the real module)."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_plain_http_is_redirected(https_on, alice):
    response = client_for(alice).get("/domains/?q=x")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/domains/?q=x"
    assert Client().get("/healthz").status_code == 200  # load balancers ask over plain HTTP


def test_hsts_on_every_https_response(https_on, alice, acme_domain):
    proxied = {"HTTP_X_FORWARDED_PROTO": "https"}
    client = client_for(alice)
    responses = [
        client.get("/domains/", **proxied),
        client.get(f"/domains/{acme_domain.pk}/", **proxied),
        client.get("/domains/0/", **proxied),  # a 404
        client.post("/domains/add/", {}, **proxied),
        Client().get("/login/", **proxied),
        Client().get("/healthz", **proxied),
    ]
    for response in responses:
        assert response["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains; preload"
        ), response.request["PATH_INFO"]


# --- the webhook signing secret --------------------------------------------------------------


def test_the_webhook_secret_is_never_in_a_cookie(alice, acme):
    client = client_for(alice)
    response = client.post(
        "/settings/channels/add/",
        {"kind": "webhook", "name": "Chat", "target": "https://hooks.acme.test/T0"},
    )
    channel = AlertChannel.objects.get(organization=acme)
    assert response.status_code == 302
    assert response["Location"] == f"/settings/channels/{channel.pk}/secret/"
    assert channel.secret not in str(response.cookies)
    assert all(channel.secret not in str(m) for m in cookie_messages(client))
    page = client.get(response["Location"])
    assert channel.secret in page.content.decode()
    assert channel.secret not in str(page.cookies) + str(client.cookies)
    assert "no-store" in page["Cache-Control"]
    assert client.get(response["Location"]).status_code == 404  # once only


def cookie_messages(client) -> list:
    """The messages the `messages` cookie carries, decoded (it may be compressed)."""
    morsel = client.cookies.get("messages")
    if morsel is None or not morsel.value:
        return []
    return CookieStorage(HttpRequest())._decode(morsel.value) or []


def test_another_owner_cannot_read_the_secret_page(alice, acme):
    client_for(alice).post(
        "/settings/channels/add/",
        {"kind": "webhook", "name": "Chat", "target": "https://hooks.acme.test/T0"},
    )
    channel = AlertChannel.objects.get(organization=acme)
    carol = make_user("carol")
    Membership.objects.create(organization=acme, user=carol, role="owner")
    assert client_for(carol).get(f"/settings/channels/{channel.pk}/secret/").status_code == 404


# --- ids out of range --------------------------------------------------------------------


def test_switching_to_a_team_id_past_the_range_is_not_found(alice):
    response = client_for(alice).post("/team/switch/", {"organization": TOO_BIG})
    assert response.status_code == 404
    for junk in ("", "-1", "0", "1e3", "\u0661", " 12x"):
        assert client_for(alice).post("/team/switch/", {"organization": junk}).status_code == 404


def test_parse_id():
    assert parse_id("42") == 42
    assert parse_id(str(MAX_ID)) == MAX_ID
    for junk in (TOO_BIG, "0", "-3", "", None, "4.0", "\u0661\u0662", "9" * 40):
        assert parse_id(junk) is None


def routes_with_ids(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from routes_with_ids(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.pattern.converters:
            yield prefix + str(entry.pattern), entry.pattern.converters


ID_ROUTES = sorted(
    (route, {name: type(c).__name__ for name, c in converters.items()})
    for route, converters in routes_with_ids(get_resolver().url_patterns)
    if not route.startswith("admin/")
)


def test_every_id_in_a_path_uses_the_checked_converter():
    loose = [(route, kinds) for route, kinds in ID_ROUTES if "IntConverter" in kinds.values()]
    assert loose == []
    assert len([r for r, kinds in ID_ROUTES if "IdConverter" in kinds.values()]) >= 15


@pytest.mark.parametrize("route", [r for r, kinds in ID_ROUTES if "IdConverter" in kinds.values()])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_id_past_the_range_is_not_found(alice, route, method):
    path = "/" + re.sub(r"<id:\w+>", TOO_BIG, route)
    path = re.sub(r"<(?:str:)?\w+>", "x", path)
    staff = make_user("root", is_staff=True, is_superuser=True)
    response = getattr(client_for(staff), method)(path)
    assert response.status_code == 404, f"{method} {path}: {response.status_code}"


def test_assigning_unclaimed_reports_to_a_team_past_the_range(alice):
    staff = make_user("root", is_staff=True, is_superuser=True)
    response = client_for(staff).post(
        "/reports/unclaimed/assign/", {"organization": TOO_BIG, "domain": "acme.example"}
    )
    assert response.status_code in (302, 404)
