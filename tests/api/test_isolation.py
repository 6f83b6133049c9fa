"""Another team's object is a 404 on every object route of the API, for every method: walk
the router like the URL-conf walk of the pages (tests/mailsec/test_login_required.py), with
Acme's read-write token asking for Globex's objects."""

import pytest
from django.urls import get_resolver

from tests.api.conftest import api_client, token_for
from tests.api.world import world_of
from tests.conftest import client_for
from tests.mailsec.test_login_required import walk

API_ROUTES = sorted(
    (name, path) for name, path in walk(get_resolver().url_patterns) if path.startswith("/api/v1/")
)
OBJECT_ROUTES = [(name, path) for name, path in API_ROUTES if "/1/" in path]


def test_the_walk_found_the_object_routes():
    names = {name for name, _ in OBJECT_ROUTES}
    assert {"domain-detail", "run-detail", "aggregate-report-records", "channel-test"} <= names
    assert len(OBJECT_ROUTES) >= 15


@pytest.fixture
def worlds(acme, globex, alice, olga, acme_domain, globex_domain):
    return world_of(acme, acme_domain, alice), world_of(globex, globex_domain, olga)


def owner_of_route(name: str) -> str:
    """The object kind a route's id names: "domain-report-summary" -> "domain"."""
    kinds = ["aggregate-report", "tls-report", "failure-report", "domain", "run", "check"]
    kinds += ["upload", "channel"]
    return next(kind for kind in kinds if name == kind or name.startswith(f"{kind}-"))


@pytest.mark.parametrize(("name", "path"), OBJECT_ROUTES)
def test_another_teams_object_is_not_found(worlds, alice, acme, name, path):
    ours, theirs = worlds
    kind = owner_of_route(name)
    client = api_client(token_for(alice, acme, "write"))
    their_path = path.replace("/1/", f"/{theirs.ids()[kind]}/")
    answers = {
        method: getattr(client, method)(their_path, content_type="application/json").status_code
        for method in ("get", "post", "patch", "delete")
    }
    # 405 where the route takes no such method: that says nothing about the object either.
    assert set(answers.values()) <= {404, 405}, f"{their_path}: {answers}"
    assert 404 in answers.values(), f"{their_path}: {answers}"
    # The same route finds the team's own object (the 404 above is not a broken route).
    our_path = path.replace("/1/", f"/{ours.ids()[kind]}/")
    if answers["get"] == 404:
        assert client.get(our_path).status_code == 200, our_path
    assert ours.domain.__class__.objects.filter(pk=theirs.domain.pk).exists()  # not deleted


LISTS = {
    "/api/v1/domains/": "domain",
    "/api/v1/reports/aggregate/": "aggregate-report",
    "/api/v1/reports/tls/": "tls-report",
    "/api/v1/reports/failure/": "failure-report",
    "/api/v1/uploads/": "upload",
    "/api/v1/channels/": "channel",
}


def test_every_list_is_checked():
    lists = {p for _, p in API_ROUTES if "/1/" not in p and "/x/" not in p}
    assert lists - set(LISTS) == {
        "/api/v1/schema/",
        "/api/v1/docs/",
        "/api/v1/finding-kinds/",  # the catalogue: the same for every team
    }


@pytest.mark.parametrize(("path", "kind"), LISTS.items())
def test_lists_show_only_the_team_s_objects(worlds, alice, acme, path, kind):
    ours, theirs = worlds
    response = api_client(token_for(alice, acme, "read")).get(path)
    assert response.status_code == 200, path
    body = response.json()
    ids = {row["id"] for row in (body["results"] if isinstance(body, dict) else body)}
    assert ours.ids()[kind] in ids
    assert theirs.ids()[kind] not in ids


def test_an_id_no_route_matches_is_a_json_404(alice):
    client = client_for(alice)
    for path in ("/api/v1/channels/99999999999999999999/", "/api/v1/nothing-here/"):
        response = client.get(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    page = client.get("/domains/99999999999999999999/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
