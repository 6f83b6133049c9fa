"""The alert part of the settings page: channels, deliveries and the team's preferences."""

import json

import pytest

from domains.models import AlertChannel, AlertDelivery, ChannelKind
from tests.conftest import client_for
from tests.domains.test_alerts import WebhookReceiver, email_channel, webhook_channel


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


def page_of(user) -> str:
    return client_for(user).get("/settings/channels/").content.decode()


def test_everybody_sees_the_channels_and_deliveries(alice, bob, victor, acme):
    channel = email_channel(acme, "ops@acme.test")
    AlertDelivery.objects.create(
        channel=channel,
        subject="mailsec: acme.example grade B → D",
        state=AlertDelivery.State.RETRYING,
        attempts=2,
        response_status=503,
        last_error="hooks.acme.test answered HTTP 503",
    )
    for user in (alice, bob, victor):
        page = page_of(user)
        assert "ops mail" in page and "ops@acme.test" in page
        assert "mailsec: acme.example grade B → D" in page
        assert "Retrying" in page and "503" in page
    assert "Add an alert channel" in page_of(alice)
    for user in (bob, victor):
        page = page_of(user)
        assert "Add an alert channel" not in page
        assert "Send test" not in page
        assert "Grade dropped" in page  # the team's choice, read-only


def test_only_the_last_ten_deliveries_show(alice, acme):
    channel = email_channel(acme)
    for n in range(12):
        AlertDelivery.objects.create(channel=channel, subject=f"delivery number {n:02}")
    page = page_of(alice)
    assert "delivery number 11" in page and "delivery number 02" in page
    assert "delivery number 01" not in page


def test_owner_adds_an_email_channel(alice, acme):
    response = client_for(alice).post(
        "/settings/channels/add/",
        {"kind": "email", "name": "Ops", "target": " ops@acme.test,cto@acme.test , "},
    )
    assert response.status_code == 302
    channel = AlertChannel.objects.get(organization=acme)
    assert channel.kind == ChannelKind.EMAIL
    assert channel.target == "ops@acme.test, cto@acme.test"
    assert channel.secret == ""


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("email", "ops@acme.test, not an address"),
        ("email", " , "),
        ("webhook", "ftp://hooks.acme.test/x"),
        ("webhook", "not a url"),
        ("webhook", "https://user:pw@hooks.acme.test/x"),
    ],
)
def test_bad_targets_are_refused(alice, acme, kind, target):
    response = client_for(alice).post(
        "/settings/channels/add/", {"kind": kind, "name": "Bad", "target": target}, follow=True
    )
    assert not AlertChannel.objects.exists()
    assert 'class="error"' in response.content.decode()


def test_a_literal_private_address_is_refused_at_once(alice, acme, settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    response = client_for(alice).post(
        "/settings/channels/add/",
        {"kind": "webhook", "name": "Inside", "target": "http://10.1.2.3/hook"},
        follow=True,
    )
    assert not AlertChannel.objects.exists()
    assert "private addresses" in response.content.decode()


def test_a_webhooks_secret_shows_once(alice, bob, acme):
    client = client_for(alice)
    response = client.post(
        "/settings/channels/add/",
        {"kind": "webhook", "name": "Chat", "target": "https://hooks.acme.test/T0/B1/s3cr3tpath"},
        follow=True,
    )
    channel = AlertChannel.objects.get(organization=acme)
    assert len(channel.secret) >= 43  # token_urlsafe(32)
    assert channel.secret in response.content.decode()
    again = client.get("/settings/channels/").content.decode()
    assert channel.secret not in again
    assert "https://hooks.acme.test/T0/B1/s3cr3tpath" in again  # owners see the whole URL
    # The path of a webhook URL is often a credential itself: others see the host only.
    bobs = page_of(bob)
    assert "s3cr3tpath" not in bobs and channel.secret not in bobs
    assert "https://hooks.acme.test/…" in bobs


def test_owner_disables_enables_and_deletes(alice, acme):
    channel = email_channel(acme)
    client = client_for(alice)
    client.post(f"/settings/channels/{channel.pk}/disable/")
    channel.refresh_from_db()
    assert not channel.enabled and "Disabled by alice" in channel.disabled_reason
    assert "Disabled by alice" in page_of(alice)

    AlertChannel.objects.filter(pk=channel.pk).update(consecutive_failures=5)
    client.post(f"/settings/channels/{channel.pk}/enable/")
    channel.refresh_from_db()
    assert channel.enabled and channel.consecutive_failures == 0 and not channel.disabled_reason

    client.post(f"/settings/channels/{channel.pk}/delete/")
    assert not AlertChannel.objects.filter(pk=channel.pk).exists()


def test_send_test_shows_the_outcome(alice, acme, receiver):
    channel = webhook_channel(acme, receiver.url)
    client = client_for(alice)
    page = client.post(f"/settings/channels/{channel.pk}/test/", follow=True).content.decode()
    assert "Test alert sent to ops hook." in page
    assert json.loads(receiver.requests[0].body)["test"] is True

    receiver.statuses = [404]
    page = client.post(f"/settings/channels/{channel.pk}/test/", follow=True).content.decode()
    assert "Test alert to ops hook failed" in page and "HTTP 404" in page
    assert AlertDelivery.objects.filter(channel=channel, is_test=True).count() == 2


def test_send_test_by_email(alice, acme, mailoutbox):
    channel = email_channel(acme, "ops@acme.test")
    client_for(alice).post(f"/settings/channels/{channel.pk}/test/")
    [message] = mailoutbox
    assert message.to == ["ops@acme.test"]
    assert AlertDelivery.objects.get().state == AlertDelivery.State.SENT


def test_owner_changes_the_preferences(alice, acme):
    client = client_for(alice)
    client.post(
        "/settings/alerts/",
        {"alert_events": ["check_failed", "grade_dropped"], "alert_digest": "on"},
    )
    acme.refresh_from_db()
    assert acme.alert_events == ["grade_dropped", "check_failed"]
    assert acme.alert_digest

    client.post("/settings/alerts/", {"alert_events": ["grade_raised", "everything"]})
    acme.refresh_from_db()
    assert acme.alert_events == ["grade_dropped", "check_failed"]  # an unknown kind: refused

    client.post("/settings/alerts/", {})  # every box unticked
    acme.refresh_from_db()
    assert acme.alert_events == [] and not acme.alert_digest


def test_members_and_viewers_may_not_change_alerts(bob, victor, acme):
    channel = email_channel(acme)
    posts = [
        ("/settings/alerts/", {"alert_events": ["check_failed"], "alert_digest": "on"}),
        ("/settings/channels/add/", {"kind": "email", "name": "x", "target": "x@acme.test"}),
        (f"/settings/channels/{channel.pk}/disable/", {}),
        (f"/settings/channels/{channel.pk}/enable/", {}),
        (f"/settings/channels/{channel.pk}/delete/", {}),
        (f"/settings/channels/{channel.pk}/test/", {}),
    ]
    for user in (bob, victor):
        client = client_for(user)
        for url, data in posts:
            assert client.post(url, data).status_code == 403, (user, url)
    acme.refresh_from_db()
    assert not acme.alert_digest
    assert list(AlertChannel.objects.all()) == [channel]
    assert channel.deliveries.count() == 0


def test_another_teams_channel_is_not_found(alice, olga, globex):
    theirs = email_channel(globex, "ops@globex.test")
    client = client_for(alice)
    for action in ("disable", "enable", "delete", "test"):
        assert client.post(f"/settings/channels/{theirs.pk}/{action}/").status_code == 404
    assert "ops@globex.test" not in page_of(alice)
    theirs.refresh_from_db()
    assert theirs.enabled and theirs.deliveries.count() == 0


def test_the_alert_pages_need_login(client, acme):
    channel = email_channel(acme)
    for url in ("/settings/alerts/", f"/settings/channels/{channel.pk}/test/"):
        response = client.post(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_gets_are_not_allowed(alice, acme):
    channel = email_channel(acme)
    client = client_for(alice)
    assert client.get(f"/settings/channels/{channel.pk}/delete/").status_code == 405
    assert AlertChannel.objects.filter(pk=channel.pk).exists()
