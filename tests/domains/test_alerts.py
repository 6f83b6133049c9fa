"""Alerts against real local servers: an SMTP server (aiosmtpd) and an HTTP receiver."""

import email
import email.policy
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from domains import alerts
from domains.alerts import RetryLater, deliver, notify, send_digests, send_test
from domains.models import (
    AlertChannel,
    AlertDelivery,
    ChannelKind,
    CheckRun,
    Domain,
    DomainEvent,
    EventKind,
    RunStatus,
)
from tests.servers import free_port

# --- the real servers --------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


class _LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind asks socket.getfqdn(), a reverse DNS lookup: not on loopback.
        HTTPServer.__base__.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class WebhookReceiver:
    """An HTTP server on loopback that records every request and answers each with the next
    status of `statuses` (200 when they are used up), after `delay` seconds."""

    def __init__(self):
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = b"ok" if status < 300 else b"receiver says no"
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args):
                pass

        self.server = _LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/mailsec?team=acme"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


class Inbox:
    """An aiosmtpd handler that keeps every message; refuses the addresses in `refuse`."""

    def __init__(self):
        self.envelopes = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self):
        return [
            email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes
        ]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="smtp.test")
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "mailsec@acme.test"
    yield inbox
    controller.stop()


# --- the data ----------------------------------------------------------------------------------


@pytest.fixture
def run(acme_domain):
    return make_run(acme_domain)


def make_run(domain: Domain) -> CheckRun:
    now = timezone.now()
    return CheckRun.objects.create(
        domain=domain,
        name=domain.name,
        started_at=now,
        finished_at=now,
        status=RunStatus.COMPLETE,
        score=40,
        grade="D",
    )


def make_event(run, kind, severity="", *, summary="", data=None, at=None) -> DomainEvent:
    return DomainEvent.objects.create(
        domain=run.domain,
        run=run,
        created_at=at or timezone.now(),
        kind=kind,
        severity=severity,
        summary=summary or f"{kind} on {run.domain.name}",
        data=data or {},
    )


def grade_drop(run, **kwargs) -> DomainEvent:
    return make_event(
        run,
        EventKind.GRADE_DROPPED,
        summary="Grade dropped from B to D",
        data={"before": "B", "after": "D"},
        **kwargs,
    )


def webhook_channel(organization, url, name="ops hook") -> AlertChannel:
    return AlertChannel.objects.create(
        organization=organization,
        kind=ChannelKind.WEBHOOK,
        name=name,
        target=url,
        secret=secrets.token_urlsafe(32),
    )


def email_channel(organization, target="ops@acme.test, cto@acme.test") -> AlertChannel:
    return AlertChannel.objects.create(
        organization=organization, kind=ChannelKind.EMAIL, name="ops mail", target=target
    )


def pending_delivery(channel, subject="mailsec: acme.example grade B → D") -> AlertDelivery:
    payload = alerts.build_payload(channel.organization, [], subject=subject)
    return AlertDelivery.objects.create(channel=channel, subject=subject, payload=payload)


# --- e-mail ------------------------------------------------------------------------------------


def test_alert_email_reaches_the_smtp_server(smtp, acme, run, settings):
    settings.MAILSEC_SITE_URL = "https://mailsec.acme.test"
    channel = email_channel(acme)
    events = [
        grade_drop(run),
        make_event(run, EventKind.FINDING_APPEARED, "high", summary="SPF ends in +all"),
        make_event(run, EventKind.FINDING_APPEARED, "critical", summary="No DMARC record"),
        make_event(
            run,
            EventKind.RECORD_CHANGED,
            summary="MX records changed",
            data={"before": ["10 mx1.acme.example"], "after": ["10 mx2.acme.example", "20 b."]},
        ),
    ]
    [delivery] = notify(events)
    delivered = deliver(delivery.pk)

    assert delivered.state == AlertDelivery.State.SENT
    assert delivered.sent_at is not None and delivered.attempts == 1
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "mailsec@acme.test"
    assert envelope.rcpt_tos == ["ops@acme.test", "cto@acme.test"]
    [message] = smtp.messages()
    # Django folds a non-ASCII subject onto a continuation line; unfolded, it starts with a space.
    assert message["Subject"].strip() == (
        "mailsec: acme.example grade B → D, 2 new findings, 1 record changed"
    )
    body = message.get_content().replace("\r\n", "\n")
    for text in ("Grade dropped from B to D", "SPF ends in +all", "No DMARC record"):
        assert text in body
    assert f"see https://mailsec.acme.test/domains/{run.domain_id}/\n" in body
    assert "acme.example: Finding appeared (critical)" in body
    assert "was: 10 mx1.acme.example\n  now: 10 mx2.acme.example; 20 b.\n" in body
    channel.refresh_from_db()
    assert channel.consecutive_failures == 0


def test_refused_recipients_fail_for_good(smtp, acme):
    smtp.refuse = {"ops@acme.test"}
    channel = email_channel(acme, "ops@acme.test")
    delivery = deliver(pending_delivery(channel).pk)
    assert delivery.state == AlertDelivery.State.FAILED
    assert "550" in delivery.last_error and "ops@acme.test" in delivery.last_error
    assert smtp.envelopes == []


def test_an_unreachable_mail_server_is_retried(settings, acme):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_PASSWORD = "smtp-password-never-shown"
    delivery = pending_delivery(email_channel(acme))
    with pytest.raises(RetryLater) as retry:
        deliver(delivery.pk)
    assert retry.value.countdown == 30
    delivery.refresh_from_db()
    assert delivery.state == AlertDelivery.State.RETRYING
    assert "refused" in delivery.last_error.lower()
    assert "smtp-password-never-shown" not in delivery.last_error


# --- webhooks ----------------------------------------------------------------------------------


def test_webhook_is_a_signed_json_post(receiver, acme, run):
    channel = webhook_channel(acme, receiver.url)
    event = grade_drop(run)
    [delivery] = notify([event])
    before = int(time.time())
    delivered = deliver(delivery.pk)

    assert delivered.state == AlertDelivery.State.SENT
    assert delivered.response_status == 200
    [request] = receiver.requests
    assert request.path == "/hooks/mailsec?team=acme"
    assert request.headers["Content-Type"] == "application/json"
    timestamp = request.headers["X-Mailsec-Timestamp"]
    assert before - 1 <= int(timestamp) <= time.time() + 1
    expected = hmac.new(
        channel.secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["X-Mailsec-Signature"], f"sha256={expected}")
    body = json.loads(request.body)
    assert body["type"] == "mailsec.alert"
    assert body["organization"] == "Acme"
    assert body["test"] is False
    [sent] = body["events"]
    assert sent["domain"] == "acme.example"
    assert sent["kind"] == "grade_dropped"
    assert sent["summary"] == "Grade dropped from B to D"
    assert sent["data"] == {"before": "B", "after": "D"}
    assert sent["created_at"] == event.created_at.isoformat()
    assert channel.secret not in request.body.decode()


def test_a_5xx_is_retried_with_back_off_then_sent(receiver, acme):
    receiver.statuses = [500]
    delivery = pending_delivery(webhook_channel(acme, receiver.url))
    with pytest.raises(RetryLater) as retry:
        deliver(delivery.pk)
    assert retry.value.countdown == 30
    delivery.refresh_from_db()
    assert delivery.state == AlertDelivery.State.RETRYING
    assert delivery.attempts == 1
    assert delivery.response_status == 500
    assert "HTTP 500" in delivery.last_error and "receiver says no" in delivery.last_error

    delivered = deliver(delivery.pk)
    assert delivered.state == AlertDelivery.State.SENT
    assert delivered.attempts == 2
    assert delivered.response_status == 200
    assert delivered.last_error == ""
    assert len(receiver.requests) == 2


def test_back_off_grows_and_stops_after_five_attempts(receiver, acme):
    receiver.statuses = [503, 429, 502, 500, 500]
    channel = webhook_channel(acme, receiver.url)
    delivery = pending_delivery(channel)
    countdowns = []
    for _ in range(4):
        with pytest.raises(RetryLater) as retry:
            deliver(delivery.pk)
        countdowns.append(retry.value.countdown)
    assert countdowns == [30, 120, 480, 1920]
    final = deliver(delivery.pk)
    assert final.state == AlertDelivery.State.FAILED
    assert final.attempts == 5
    channel.refresh_from_db()
    assert channel.consecutive_failures == 1
    assert deliver(delivery.pk).attempts == 5  # a finished delivery is not tried again
    assert len(receiver.requests) == 5


def test_a_404_fails_at_once(receiver, acme):
    receiver.statuses = [404]
    channel = webhook_channel(acme, receiver.url)
    delivery = deliver(pending_delivery(channel).pk)
    assert delivery.state == AlertDelivery.State.FAILED
    assert delivery.attempts == 1
    assert delivery.response_status == 404
    channel.refresh_from_db()
    assert channel.consecutive_failures == 1 and channel.enabled


def test_redirects_are_not_followed(receiver, acme):
    receiver.statuses = [302]
    delivery = deliver(pending_delivery(webhook_channel(acme, receiver.url)).pk)
    assert delivery.state == AlertDelivery.State.FAILED
    assert "redirect" in delivery.last_error
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_retried(acme):
    delivery = pending_delivery(webhook_channel(acme, f"http://127.0.0.1:{free_port()}/hook"))
    with pytest.raises(RetryLater):
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == AlertDelivery.State.RETRYING
    assert "refused" in delivery.last_error.lower()


def test_a_slow_receiver_times_out_and_is_retried(receiver, acme, monkeypatch):
    monkeypatch.setattr(alerts, "WEBHOOK_TIMEOUT", 0.3)
    receiver.delay = 1.0
    delivery = pending_delivery(webhook_channel(acme, receiver.url))
    with pytest.raises(RetryLater):
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert "no answer within 0.3 s" in delivery.last_error


def test_private_targets_are_refused(receiver, acme, settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    delivery = deliver(pending_delivery(webhook_channel(acme, receiver.url)).pk)
    assert delivery.state == AlertDelivery.State.FAILED
    assert "loopback" in delivery.last_error
    assert receiver.requests == []


def test_five_final_failures_disable_the_channel(receiver, acme):
    channel = webhook_channel(acme, receiver.url)
    receiver.statuses = [404, 410, 404, 404]
    for _ in range(4):
        deliver(pending_delivery(channel).pk)
    deliver(pending_delivery(channel).pk)  # a success in between starts the count anew
    receiver.statuses = [404] * 5
    for _ in range(4):
        deliver(pending_delivery(channel).pk)
    channel.refresh_from_db()
    assert channel.enabled and channel.consecutive_failures == 4

    deliver(pending_delivery(channel).pk)
    channel.refresh_from_db()
    assert not channel.enabled
    assert channel.consecutive_failures == 5
    assert "5 failed deliveries in a row" in channel.disabled_reason
    assert "HTTP 404" in channel.disabled_reason
    assert channel.secret not in channel.disabled_reason
    # What was queued before it was disabled is dropped, not sent.
    late = deliver(pending_delivery(channel).pk)
    assert late.state == AlertDelivery.State.FAILED
    assert len(receiver.requests) == 10


def test_a_delivery_whose_channel_was_deleted_is_skipped(acme):
    channel = email_channel(acme)
    delivery = pending_delivery(channel)
    channel.delete()
    assert deliver(delivery.pk) is None


def test_an_unexpected_error_still_gets_an_outcome(acme, monkeypatch):
    def broken(delivery):
        raise KeyError("https://hooks.acme.test/secret-path")

    monkeypatch.setitem(alerts.SENDERS, ChannelKind.WEBHOOK, broken)
    delivery = pending_delivery(webhook_channel(acme, "https://hooks.acme.test/secret-path"))
    with pytest.raises(RetryLater):
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == AlertDelivery.State.RETRYING
    assert delivery.last_error == "unexpected error (KeyError)"


def test_send_test_delivers_a_sample_at_once(receiver, acme):
    channel = webhook_channel(acme, receiver.url)
    delivery = send_test(channel)
    assert delivery.is_test and delivery.state == AlertDelivery.State.SENT
    body = json.loads(receiver.requests[0].body)
    assert body["test"] is True
    assert body["events"][0]["domain"] == "example.com"


def test_a_failing_test_is_shown_and_never_disables(receiver, acme):
    channel = webhook_channel(acme, receiver.url)
    receiver.statuses = [500] * 6
    for _ in range(6):
        delivery = send_test(channel)
        assert delivery.state == AlertDelivery.State.FAILED  # no retry: nobody would run it
        assert "HTTP 500" in delivery.last_error
    channel.refresh_from_db()
    assert channel.enabled and channel.consecutive_failures == 0


def test_send_test_by_email(smtp, acme):
    send_test(email_channel(acme, "ops@acme.test"))
    [message] = smtp.messages()
    assert message["Subject"] == "mailsec: test alert to ops mail"
    assert "This is a test alert" in message.get_content()


# --- choosing what alerts ----------------------------------------------------------------------


def test_notify_keeps_the_teams_kinds_and_serious_findings(acme, run):
    channel = webhook_channel(acme, "http://127.0.0.1:9/hook")
    serious = [
        grade_drop(run),
        make_event(run, EventKind.FINDING_APPEARED, "critical"),
        make_event(run, EventKind.RECORD_CHANGED),
    ]
    ignored = [
        make_event(run, EventKind.FINDING_APPEARED, "medium"),
        make_event(run, EventKind.FINDING_APPEARED, "low"),
        make_event(run, EventKind.GRADE_RAISED),  # not among the default kinds
    ]
    [delivery] = notify(serious + ignored)
    assert delivery.channel == channel
    assert set(delivery.events.all()) == set(serious)
    assert [e["kind"] for e in delivery.payload["events"]] == [e.kind for e in serious]
    assert delivery.subject == "mailsec: acme.example grade B → D, 1 new finding, 1 record changed"
    assert {e.pk for e in DomainEvent.objects.filter(alerted=True)} == {e.pk for e in serious}
    assert notify(serious) == []  # alerted once only


def test_notify_follows_the_teams_choice(acme, run):
    webhook_channel(acme, "http://127.0.0.1:9/hook")
    acme.alert_events = ["grade_raised"]
    acme.save()
    assert notify([grade_drop(run), make_event(run, EventKind.FINDING_APPEARED, "high")]) == []
    [delivery] = notify([make_event(run, EventKind.GRADE_RAISED)])
    assert delivery.events.get().kind == EventKind.GRADE_RAISED


def test_notify_sends_to_each_enabled_channel_after_commit(
    acme, run, django_capture_on_commit_callbacks
):
    webhook_channel(acme, "http://127.0.0.1:9/a", name="a")
    email_channel(acme)
    AlertChannel.objects.create(
        organization=acme, kind=ChannelKind.EMAIL, name="off", target="x@acme.test", enabled=False
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliveries = notify([grade_drop(run)])
    assert sorted(d.channel.name for d in deliveries) == ["a", "ops mail"]
    assert len(callbacks) == 2  # one deliver_alert task each, queued once committed


def test_notify_does_nothing_for_digest_teams(acme, run):
    webhook_channel(acme, "http://127.0.0.1:9/hook")
    acme.alert_digest = True
    acme.save()
    event = grade_drop(run)
    assert notify([event]) == []
    assert AlertDelivery.objects.count() == 0
    event.refresh_from_db()
    assert not event.alerted


def test_send_digests_once_a_day_with_all_pending_events(acme, globex, run):
    acme.alert_digest = True
    acme.save()
    channels = [webhook_channel(acme, "http://127.0.0.1:9/hook"), email_channel(acme)]
    other = make_run(Domain.objects.create(organization=acme, name="acme-two.example"))
    now = timezone.now()
    morning = [
        grade_drop(run, at=now - timedelta(hours=5)),
        make_event(other, EventKind.RECORD_CHANGED, at=now - timedelta(hours=2)),
    ]
    make_event(run, EventKind.FINDING_APPEARED, "info", at=now - timedelta(hours=1))
    make_event(run, EventKind.RECORD_CHANGED, at=now - timedelta(days=3))  # before any digest
    # Globex alerts per check: its events are none of the digest's business.
    globex_run = make_run(Domain.objects.create(organization=globex, name="globex.example"))
    globex_event = grade_drop(globex_run, at=now - timedelta(hours=1))

    assert send_digests(now) == 2
    deliveries = AlertDelivery.objects.all()
    assert {d.channel for d in deliveries} == set(channels)
    for delivery in deliveries:
        assert set(delivery.events.all()) == set(morning)
        assert delivery.subject == "mailsec digest: 2 changes on 2 domains"
    acme.refresh_from_db()
    assert acme.alert_digest_sent_at == now
    assert all(e.alerted for e in DomainEvent.objects.filter(pk__in=[e.pk for e in morning]))
    globex_event.refresh_from_db()
    assert not globex_event.alerted

    # Stamped before the digest, stored after it (its run's transaction was still open).
    late = make_event(other, EventKind.RECORD_CHANGED, at=now - timedelta(minutes=10))
    later = make_event(other, EventKind.RECORD_CHANGED, at=now + timedelta(hours=3))
    assert send_digests(now + timedelta(hours=4)) == 0  # once a day
    assert send_digests(now + timedelta(hours=24)) == 2
    newest = AlertDelivery.objects.first()
    assert set(newest.events.all()) == {late, later}
    assert newest.subject == "mailsec digest: acme-two.example 2 records changed"
    assert send_digests(now + timedelta(hours=49)) == 0  # nothing new: no empty digest
