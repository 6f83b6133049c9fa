"""Settings as sections with pages of their own and a navigation: team and members, security,
alert channels, report mailboxes, audit log (owners). The old address leads to the first one;
who sees what is as on the one long page it was."""

import pytest

from tests.conftest import client_for
from tests.test_browser import chromium_page, sign_in

SECTIONS = {
    "/settings/members/": "Team and members",
    "/settings/sign-in/": "Security",
    "/settings/channels/": "Alert channels",
    "/settings/mailboxes/": "Report mailboxes",
    "/settings/audit/": "Audit log",
}


def text(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


def test_each_section_renders_for_an_owner_with_the_navigation(alice):
    client = client_for(alice)
    for path, title in SECTIONS.items():
        page = text(client, path)
        assert f"<title>{title} · Settings" in page, path
        assert f'<a href="{path}" aria-current="page">{title}</a>' in page, path
        for other in SECTIONS:  # an owner's navigation leads to every section
            assert f'<a href="{other}"' in page, (path, other)


def test_the_old_address_leads_to_the_first_section(alice):
    response = client_for(alice).get("/settings/")
    assert response.status_code == 302 and response["Location"] == "/settings/members/"


def test_owners_see_what_they_manage_in_its_section(alice):
    client = client_for(alice)
    team = text(client, "/settings/members/")
    assert "Members" in team and "Invite a member" in team and 'action="/settings/team/"' in team
    security = text(client, "/settings/sign-in/")
    assert "Sign-in to this team" in security and "Two-factor sign-in" in security
    alerts = text(client, "/settings/channels/")
    assert "Save alert preferences" in alerts and "Add an alert channel" in alerts
    mailboxes = text(client, "/settings/mailboxes/")
    assert 'href="/reports/mailboxes/"' in mailboxes


@pytest.mark.parametrize("who", ["bob", "victor"])
def test_members_and_viewers_see_what_they_saw_before(who, request, alice):
    user = request.getfixturevalue(who)
    client = client_for(user)
    team = text(client, "/settings/members/")
    assert "alice" in team and who in team
    assert "Invite a member" not in team and 'action="/settings/team/"' not in team
    assert 'name="role"' not in team  # roles are shown, not changed
    security = text(client, "/settings/sign-in/")
    assert "Two-factor sign-in" in security and "Sign-in to this team" not in security
    alerts = text(client, "/settings/channels/")
    assert "Alert channels" in alerts and "Daily digest" in alerts
    assert "Save alert preferences" not in alerts and "Add an alert channel" not in alerts
    assert 'href="/reports/mailboxes/"' in text(client, "/settings/mailboxes/")
    assert 'href="/settings/audit/"' not in team  # the audit log is for owners
    assert client.get("/settings/audit/").status_code == 403


def test_a_user_without_a_team_has_no_settings(db):
    from tests.conftest import make_user

    loner = client_for(make_user("loner"))
    for path in SECTIONS:
        assert loner.get(path).status_code == 404, path


def test_changes_lead_back_to_their_section(alice):
    client = client_for(alice)
    rename = client.post("/settings/team/", {"name": "Acme Corp"})
    assert rename["Location"] == "/settings/members/"
    alerts = client.post("/settings/alerts/", {"alert_events": ["grade_dropped"]})
    assert alerts["Location"] == "/settings/channels/"
    security = client.post("/settings/security/", {})
    assert security["Location"] == "/settings/sign-in/"


@pytest.mark.django_db(transaction=True)
def test_the_digest_checkbox_sits_on_the_line_of_its_label(live_server, alice):
    base = live_server.url
    boxes = {}
    with chromium_page() as page:
        sign_in(page, base)
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{base}/settings/channels/")
            box = page.locator("input[name=alert_digest]").bounding_box()
            label = page.locator("label[for=id_alert_digest]").bounding_box()
            boxes[width] = (box, label)
    for width, (box, label) in boxes.items():
        # Same line: their vertical extents overlap; the label follows the box closely.
        assert box["y"] < label["y"] + label["height"], width
        assert label["y"] < box["y"] + box["height"], width
        assert 0 <= label["x"] - (box["x"] + box["width"]) < 24, width
