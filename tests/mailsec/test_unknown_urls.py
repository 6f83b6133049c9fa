"""Unknown and malformed URLs answer 404 (or a redirect to the login page), never a 500: walk
every route with bad and huge ids and page numbers, and paths no route knows, logged in and
out. The 404 page itself once raised for a signed-in user (base.html read the resolver match
a 404 does not have)."""

import re

import pytest
from django.test import Client
from django.urls import get_resolver

from tests.mailsec.test_login_required import walk

ROUTES = sorted(walk(get_resolver().url_patterns))
# What may stand where a route takes an id: letters, zero, negative, one past the largest id
# the database stores, twenty digits, the largest id (valid, but no such object), non-UTF-8.
BAD_IDS = ["abc", "0", "-1", "9223372036854775808", "9" * 20, "9223372036854775807", "%ff%fe"]
BAD_PAGES = ["99999999999999999999", "-1", "0", "abc", "%ff", "1e9999", ""]
UNKNOWN = [
    "/nonexistent/",
    "/domains/abc/",
    "/domains/%ff%fe/",
    "/%c3%28/",
    "/reports/" + "a" * 5000 + "/",
    "/" + "x/" * 1000,
    "/domains/" + "9" * 400 + "/",
    "/static/nonexistent.css",
    "/admin/nonexistent/",
]


def id_variants(path_with_ids: str, name: str) -> list[str]:
    """The route with every id in it replaced by each bad value."""
    route = next(entry for entry in ROUTES if entry == (name, path_with_ids))[1]
    if not re.search(r"/1/", route):
        return []
    return [route.replace("/1/", f"/{bad}/") for bad in BAD_IDS]


@pytest.fixture(params=["anonymous", "signed in", "staff"])
def visitor(request, alice, acme_domain):
    from django.contrib.auth import get_user_model

    client = Client(raise_request_exception=False)
    if request.param == "signed in":
        client.force_login(alice)
    elif request.param == "staff":
        alice.is_staff = True
        alice.save()
        client.force_login(get_user_model().objects.get(pk=alice.pk))
    return client


def assert_no_500(client: Client, method: str, path: str) -> None:
    response = getattr(client, method)(path)
    assert response.status_code < 500, f"{method.upper()} {path[:200]} answered 500"


@pytest.mark.parametrize(("name", "path"), [r for r in ROUTES if "/1/" in r[1]])
def test_bad_ids_on_every_id_route(visitor, name, path):
    for bad in id_variants(path, name):
        assert_no_500(visitor, "get", bad)
        assert_no_500(visitor, "post", bad)


# /readyz answers 503 by design while beat has not run (tests/api/test_health.py).
@pytest.mark.parametrize(("name", "path"), [r for r in ROUTES if r[0] not in ("logout", "readyz")])
def test_bad_page_numbers_on_every_route(visitor, name, path):
    for page in BAD_PAGES:
        assert_no_500(visitor, "get", f"{path}?page={page}")


@pytest.mark.parametrize("path", UNKNOWN)
def test_unknown_and_malformed_paths(visitor, path):
    response = visitor.get(path)
    assert response.status_code in (302, 404), f"{path[:200]} answered {response.status_code}"


def test_a_signed_in_unknown_url_renders_the_404_page(alice):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.get("/nonexistent/")
    assert response.status_code == 404
    assert b"Log out" in response.content  # the full page, as that user


def test_favicon_answers_with_the_icon(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("/img/favicon.svg")
    assert "max-age" in response["Cache-Control"]
    page = client.get("/login/", follow=True).content.decode()
    assert 'rel="icon" href="/static/img/favicon.svg"' in page
