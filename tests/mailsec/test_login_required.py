"""Every page needs a login: walk the whole URL conf as an anonymous visitor."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# The only URLs an anonymous visitor may use.
PUBLIC = {
    "login",
    "setup",
    "healthz",
    "readyz",  # health, for monitoring: says nothing about any team
    "metrics",  # its own token or allow-list (tests/api/test_metrics.py)
    "favicon",  # a redirect to the static icon
    "invitation",  # answers "no longer valid" to a wrong token; joining needs an account
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "set_language",  # the footer's switcher: the login page has it too (POST only; a cookie)
}
SAMPLE_ARGUMENT = {"id": "1", "string": "x", "slug": "x", "path": "x/y", "uuid": "0" * 32}


def walk(patterns, prefix=""):
    """(name, path) for every route outside the admin, with sample values for its arguments."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            for name, converter in entry.pattern.converters.items():
                kind = type(converter).__name__.removesuffix("Converter").lower()
                route = re.sub(f"<(?:[a-z]+:)?{name}>", SAMPLE_ARGUMENT[kind], route)
            assert "<" not in route, f"cannot fill in {route}"
            yield entry.name, "/" + route


ROUTES = sorted(walk(get_resolver().url_patterns))


def test_the_walk_found_the_pages():
    names = {name for name, _ in ROUTES}
    assert {"home", "settings", "domains:list", "detail", "edit", "delete", "add"} - {
        n.split(":")[-1] for n in names
    } <= {"domains:list"}
    assert len(ROUTES) >= 15


def is_api(path: str) -> bool:
    """The API answers for itself (401), except its docs page, which is a page for people."""
    return path.startswith("/api/v1/") and path != "/api/v1/docs/"


@pytest.mark.parametrize(
    ("name", "path"), [r for r in ROUTES if r[0] not in PUBLIC and not is_api(r[1])]
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_sent_to_login(client, alice, name, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 302, f"{method.upper()} {path} answered {response.status_code}"
    assert response.url.startswith("/login/?next=")


@pytest.mark.parametrize(("name", "path"), [r for r in ROUTES if is_api(r[1])])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_refused_by_the_api(client, alice, name, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 401, f"{method.upper()} {path} answered {response.status_code}"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/domains/domain/", "/admin/auth/user/1/change/"]
)
def test_admin_is_for_staff_only(client, alice, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.url.startswith(("/login/?next=", "/admin/login/?next="))
    client.force_login(alice)  # an owner of a team, but not staff
    response = client.get(path)
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/?next=")
