"""Alerts: which domain events go to a team's channels, and sending them there.

Plain functions; domains/tasks.py wraps `deliver` (queue "alerts") and `send_digests` (hourly)
for Celery. E-mail goes through Django's mail backend. A webhook is a signed JSON POST opened
here with the system resolver, since owners often point webhooks at their own hosts; every
address is screened with `net.allowed_addresses` first and the connection goes to the screened
address, so a webhook cannot make mailsec reach the network it runs in (unless
`settings.MAILSEC_ALLOW_PRIVATE_TARGETS`).

Every attempt's outcome is stored on its AlertDelivery, for the settings page. Targets' paths,
secrets and SMTP credentials never reach a log line or an error message: a webhook URL's path
is often itself the secret (chat services put a token there).
"""

import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import socket
import ssl
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Prefetch, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import ngettext

from domains.findings import event_summary
from domains.models import (
    AlertChannel,
    AlertDelivery,
    ChannelKind,
    Domain,
    DomainEvent,
    EventKind,
    Organization,
)
from domains.names import display_domain
from domains.net import TargetRefused, allowed_addresses, tls_context

logger = logging.getLogger(__name__)

# A new finding alerts only from this severity up: the others wait for the domain page ...
ALERT_SEVERITIES = ("critical", "high")
# ... except these, whatever their severity: a certificate about to expire (or expired) needs
# someone to act before mail or logins fail.
ALWAYS_ALERT = [
    f"{service}.{kind}"
    for service in ("smtp", "submission", "imap", "pop3")
    for kind in ("cert_expiring", "cert_expired")
] + ["smtp.open_relay"]
MAX_ATTEMPTS = 5
BACKOFF_BASE = 30  # seconds before the first retry; each further one waits 4 times longer
DISABLE_AFTER = 5  # final failures in a row that switch a channel off
WEBHOOK_TIMEOUT = 10.0  # seconds, for the connection and for each read
DIGEST_INTERVAL = timedelta(days=1)
DIGEST_GRACE = timedelta(hours=1)
RECENT_DELIVERIES = 10  # shown per channel on the settings page
ERROR_BODY_BYTES = 300  # of a failing receiver's answer, kept to tell the owner why


class RetryLater(Exception):
    """The attempt failed in a way that may pass; try again in `countdown` seconds."""

    def __init__(self, countdown: int, message: str = ""):
        super().__init__(message or f"retry in {countdown} s")
        self.countdown = countdown


class DeliveryFailed(Exception):
    """One attempt failed: `permanent` when trying again cannot help (a 404, a refused target)."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.status = status


# --- choosing events ---------------------------------------------------------------------------


def alerting(organization: Organization) -> Q:
    """The DomainEvent filter for the events that alert in this team."""
    kinds = set(organization.alert_events or [])
    rule = Q(kind__in=sorted(kinds - {EventKind.FINDING_APPEARED}))
    if EventKind.FINDING_APPEARED in kinds:
        rule |= Q(kind=EventKind.FINDING_APPEARED, severity__in=ALERT_SEVERITIES)
        rule |= Q(kind=EventKind.FINDING_APPEARED, data__finding__in=ALWAYS_ALERT)
    return rule


def notify(events: list[DomainEvent]) -> list[AlertDelivery]:
    """Alert the new events of one check run: one delivery per enabled channel, sent by the
    worker once the transaction commits. A digest team gets nothing now: its events wait,
    un-alerted, for `send_digests`."""
    if not events:
        return []
    organization = Organization.objects.get(domains=events[0].domain_id)
    if organization.alert_digest:
        return []
    with transaction.atomic():
        # Locked so that two runs handing over the same events alert them once.
        chosen = list(
            DomainEvent.objects.select_for_update(of=("self",))
            .filter(pk__in=[e.pk for e in events], alerted=False)
            .filter(alerting(organization))
            .select_related("domain")
            .order_by("created_at", "id")
        )
        if not chosen:
            return []
        return _create_deliveries(organization, chosen, subject=f"mailsec: {_describe(chosen)}")


def send_digests(now=None) -> int:
    """Send the daily digest of every team due for one; returns the deliveries made."""
    now = now or timezone.now()
    due = Organization.objects.filter(alert_digest=True).filter(
        Q(alert_digest_sent_at__isnull=True) | Q(alert_digest_sent_at__lte=now - DIGEST_INTERVAL)
    )
    return sum(len(_send_digest(organization, now)) for organization in due)


def _send_digest(organization: Organization, now) -> list[AlertDelivery]:
    # A team that never had a digest gets the last day's events, not its whole history. Later
    # digests reach back a little before the last one, for events whose run committed after
    # it; an event already alerted is never sent twice.
    last = organization.alert_digest_sent_at
    since = last - DIGEST_GRACE if last else now - DIGEST_INTERVAL
    with transaction.atomic():
        events = list(
            DomainEvent.objects.select_for_update(of=("self",))
            .filter(domain__organization=organization, alerted=False)
            .filter(created_at__gt=since, created_at__lte=now)
            .filter(alerting(organization))
            .select_related("domain")
            .order_by("created_at", "id")
        )
        if not events or not organization.alert_channels.filter(enabled=True).exists():
            return []
        # Claimed with a conditional UPDATE, so two beat runs never send the same digest.
        claimed = Organization.objects.filter(
            pk=organization.pk, alert_digest_sent_at=organization.alert_digest_sent_at
        ).update(alert_digest_sent_at=now)
        if not claimed:
            return []
        return _create_deliveries(
            organization, events, subject=f"mailsec digest: {_describe(events)}"
        )


def _create_deliveries(
    organization: Organization, events: list[DomainEvent], subject: str
) -> list[AlertDelivery]:
    payload = build_payload(organization, events, subject=subject)
    deliveries = []
    for channel in organization.alert_channels.filter(enabled=True):
        delivery = AlertDelivery.objects.create(
            channel=channel, subject=subject[:300], payload=payload
        )
        delivery.events.set(events)
        deliveries.append(delivery)
        transaction.on_commit(partial(_enqueue, delivery.pk))
    DomainEvent.objects.filter(pk__in=[e.pk for e in events]).update(alerted=True)
    return deliveries


def _enqueue(delivery_id: int) -> None:
    from domains.tasks import deliver_alert  # tasks import this module

    deliver_alert.delay(delivery_id)


# --- what a message says -----------------------------------------------------------------------


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {ngettext(one, many, count)}"


def _describe(events: list[DomainEvent]) -> str:
    """What the subject says: "example.com grade B → D, 2 new findings", or for several
    domains a count of the changes."""
    domains = sorted({e.domain.display_name for e in events})
    if len(domains) > 1:
        return f"{_plural(len(events), 'change', 'changes')} on {len(domains)} domains"
    parts = []
    grades = [e for e in events if e.kind in (EventKind.GRADE_DROPPED, EventKind.GRADE_RAISED)]
    if grades:
        before, after = grades[0].data.get("before"), grades[-1].data.get("after")
        parts.append(f"grade {before} → {after}" if before and after else "grade changed")
    counts = Counter(e.kind for e in events)
    for kind, one, many in (
        (EventKind.FINDING_APPEARED, "new finding", "new findings"),
        (EventKind.FINDING_RESOLVED, "finding resolved", "findings resolved"),
        (EventKind.RECORD_CHANGED, "record changed", "records changed"),
        (EventKind.SERVER_CHANGED, "mail server changed", "mail servers changed"),
        (EventKind.CHECK_FAILED, "check failed", "checks failed"),
        (EventKind.NEW_SENDER, "new sender", "new senders"),
    ):
        if counts[kind]:
            parts.append(_plural(counts[kind], one, many))
    return f"{domains[0]} {', '.join(parts)}"


def site_url(path: str) -> str:
    """The path as a full link when MAILSEC_SITE_URL is set (alerts are read outside the app)."""
    return settings.MAILSEC_SITE_URL + path


def build_payload(
    organization: Organization, events: list[DomainEvent], *, subject: str, test=False
) -> dict:
    """The webhook body, also what the e-mail is written from: the API's serializer, so the
    webhook's events are the API's (one component of the OpenAPI schema)."""
    from mailsec.api.serializers import AlertPayloadSerializer

    payload = {"organization": organization, "subject": subject, "events": events, "test": test}
    return json.loads(json.dumps(AlertPayloadSerializer(payload).data))


def _email_body(delivery: AlertDelivery) -> str:
    labels = dict(EventKind.choices)
    events = [
        {
            **e,
            "domain_name": display_domain(e["domain"]),
            "label": labels.get(e["kind"], e["kind"]),
            "summary": event_summary(e),  # a finding's title in the language of the e-mail
            "when": datetime.fromisoformat(e["created_at"]).astimezone(UTC),
            "was": _shown(e.get("data", {}).get("before")),
            "now": _shown(e.get("data", {}).get("after")),
        }
        for e in delivery.payload.get("events", [])
    ]
    return render_to_string(
        "mailsec/alert_email.txt",
        {"delivery": delivery, "channel": delivery.channel, "events": events},
    )


def _shown(value) -> str:
    """A before or after value in a line of text: records one after the other."""
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


# --- sending -----------------------------------------------------------------------------------


def deliver(delivery_id: int) -> AlertDelivery | None:
    """Make one attempt at a delivery and store its outcome. Raises RetryLater when it failed
    in a way that may pass and attempts are left; a test delivery gets one attempt only, since
    nothing would retry it. None when the delivery is gone (its channel was deleted)."""
    deliveries = AlertDelivery.objects.select_related("channel__organization")
    delivery = deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        return None
    if delivery.state not in (AlertDelivery.State.PENDING, AlertDelivery.State.RETRYING):
        return delivery  # done already: a task handed out twice
    channel = delivery.channel
    if not channel.enabled and not delivery.is_test:
        _save(
            delivery,
            AlertDelivery.State.FAILED,
            error="The channel was disabled before this was sent.",
        )
        return delivery
    # The attempt counter is the claim: of two workers holding the same task, one sends.
    claimed = AlertDelivery.objects.filter(
        pk=delivery.pk, state=delivery.state, attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        return AlertDelivery.objects.get(pk=delivery.pk)
    delivery.attempts += 1
    try:
        status = SENDERS[ChannelKind(channel.kind)](delivery)
    except DeliveryFailed as failure:
        return _failed(delivery, failure)
    except Exception as exc:
        # A bug, or the task's time limit: the delivery still gets an outcome and its retries,
        # instead of staying "pending" for ever. The type only: a message could quote a target.
        logger.exception("alert delivery %s: unexpected error", delivery.pk)
        failure = DeliveryFailed(f"unexpected error ({type(exc).__name__})", permanent=False)
        return _failed(delivery, failure)
    _save(delivery, AlertDelivery.State.SENT, status=status, sent_at=timezone.now())
    AlertChannel.objects.filter(pk=channel.pk).update(consecutive_failures=0)
    logger.info("alert delivery %s to channel %s sent", delivery.pk, channel.pk)
    return delivery


def _failed(delivery: AlertDelivery, failure: DeliveryFailed) -> AlertDelivery:
    error = str(failure)
    final = failure.permanent or delivery.is_test or delivery.attempts >= MAX_ATTEMPTS
    logger.warning(
        "alert delivery %s to channel %s, attempt %s: %s",
        delivery.pk,
        delivery.channel_id,
        delivery.attempts,
        error,
    )
    if not final:
        _save(delivery, AlertDelivery.State.RETRYING, error=error, status=failure.status)
        raise RetryLater(BACKOFF_BASE * 4 ** (delivery.attempts - 1), error)
    _save(delivery, AlertDelivery.State.FAILED, error=error, status=failure.status)
    if not delivery.is_test:  # an owner trying a channel out must not switch it off
        _count_failure(delivery.channel, error)
    return delivery


def _save(delivery, state, *, error="", status=None, sent_at=None) -> None:
    delivery.state, delivery.last_error = state, error
    delivery.response_status, delivery.sent_at = status, sent_at
    delivery.save(update_fields=["state", "last_error", "response_status", "sent_at"])


def _count_failure(channel: AlertChannel, error: str) -> None:
    AlertChannel.objects.filter(pk=channel.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    now = timezone.now()
    reason = (
        f"Disabled on {now:%Y-%m-%d %H:%M} UTC after {DISABLE_AFTER} failed deliveries in a "
        f"row; the last: {error}"
    )
    disabled = AlertChannel.objects.filter(
        pk=channel.pk, enabled=True, consecutive_failures__gte=DISABLE_AFTER
    ).update(enabled=False, disabled_reason=reason[:300])
    if disabled:
        logger.warning("alert channel %s disabled after repeated failures", channel.pk)


def send_email(delivery: AlertDelivery) -> None:
    """Through the configured mail backend; a refused recipient is the channel's fault (final),
    anything else may be the mail server's passing trouble (retried)."""
    message = EmailMessage(
        subject=delivery.subject,
        body=_email_body(delivery),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=parse_addresses(delivery.channel.target),
    )
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        refusals = "; ".join(
            f"{address}: {code} {_text(reply)}" for address, (code, reply) in exc.recipients.items()
        )
        permanent = all(code >= 500 for code, _ in exc.recipients.values())
        raise DeliveryFailed(
            f"the mail server refused the recipients: {refusals}", permanent=permanent
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(
            f"the mail server answered {exc.smtp_code} {_text(exc.smtp_error)}", permanent=False
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DeliveryFailed(
            f"cannot send through the mail server: {reason}", permanent=False
        ) from None


def _text(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Mailsec-Signature value: HMAC-SHA256 of "<timestamp>.<body>" with the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def post_webhook(delivery: AlertDelivery) -> int:
    """POST the payload, signed; returns the 2xx status or raises DeliveryFailed."""
    url = urlsplit(delivery.channel.target)
    try:
        host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        host = None
    if url.scheme not in ("http", "https") or not host:
        raise DeliveryFailed("the webhook URL is not a valid http(s) URL", permanent=True)
    where = host if port in (80, 443) else f"{host}:{port}"
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    connection = _PinnedConnection.for_url(url.scheme, host, port, _webhook_addresses(host, port))
    try:
        connection.request(
            "POST",
            (url.path or "/") + (f"?{url.query}" if url.query else ""),
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "mailsec",
                "X-Mailsec-Timestamp": timestamp,
                "X-Mailsec-Signature": sign(delivery.channel.secret, timestamp, body),
            },
        )
        response = connection.getresponse()
        answer = response.read(ERROR_BODY_BYTES)
    except TimeoutError:
        raise DeliveryFailed(
            f"{where}: no answer within {WEBHOOK_TIMEOUT:g} s", permanent=False
        ) from None
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason
        raise DeliveryFailed(f"{where}: certificate not valid: {reason}", permanent=True) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DeliveryFailed(f"{where}: {reason}", permanent=False) from None
    finally:
        connection.close()
    return _judge(where, response, answer)


def _judge(where: str, response: http.client.HTTPResponse, answer: bytes) -> int:
    status = response.status
    if 200 <= status < 300:
        return status
    said = f"{where} answered HTTP {status} {response.reason}".rstrip()
    if 300 <= status < 400:
        said += ", a redirect, which is not followed"
    elif answer.strip():
        said += f": {answer.decode('utf-8', 'replace').strip()}"
    raise DeliveryFailed(said, permanent=not (status >= 500 or status == 429), status=status)


def _webhook_addresses(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DeliveryFailed(
            f"cannot resolve {host}: {exc.strerror}", permanent=exc.errno != socket.EAI_AGAIN
        ) from None
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    try:
        return allowed_addresses(host, addresses)
    except TargetRefused as exc:
        raise DeliveryFailed(str(exc), permanent=True) from None


class _PinnedConnection:
    """http.client connections that connect to the addresses screened beforehand, never to what
    the name resolves to by then (a second lookup may answer otherwise: DNS rebinding). HTTPS
    still checks the certificate against the host name."""

    @staticmethod
    def for_url(scheme: str, host: str, port: int, addresses: list[str]):
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=WEBHOOK_TIMEOUT, context=tls_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=WEBHOOK_TIMEOUT)
        connection._create_connection = partial(_connect_first, addresses)
        return connection


def _connect_first(addresses: list[str], address, timeout, source_address=None) -> socket.socket:
    """socket.create_connection, over the screened addresses instead of a fresh lookup."""
    error = None
    for candidate in addresses:
        try:
            return socket.create_connection((candidate, address[1]), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error


SENDERS = {ChannelKind.EMAIL: send_email, ChannelKind.WEBHOOK: post_webhook}


# --- the settings page ------------------------------------------------------------------------


def parse_addresses(target: str) -> list[str]:
    return [a.strip() for a in target.split(",") if a.strip()]


def shown_target(channel: AlertChannel, *, full: bool) -> str:
    """The target as the page shows it: a webhook URL's path and query only to owners."""
    if full or channel.kind != ChannelKind.WEBHOOK:
        return channel.target
    url = urlsplit(channel.target)
    host = url.hostname or ""
    host = f"[{host}]" if ":" in host else host
    hidden = "/…" if url.path.strip("/") or url.query else ""
    return f"{url.scheme}://{host}{f':{url.port}' if url.port else ''}{hidden}"


def channels_for_page(organization: Organization, *, full_targets: bool) -> list[AlertChannel]:
    recent = AlertDelivery.objects.order_by("-created_at", "-id")[:RECENT_DELIVERIES]
    channels = list(
        organization.alert_channels.prefetch_related(
            Prefetch("deliveries", queryset=recent, to_attr="recent_deliveries")
        )
    )
    for channel in channels:
        channel.shown_target = shown_target(channel, full=full_targets)
    return channels


def send_test(channel: AlertChannel) -> AlertDelivery:
    """A sample alert to one channel, sent now, so an owner sees at once whether it works."""
    # Not saved: a sample of no domain, whose link is the domain list.
    sample = DomainEvent(
        domain=Domain(name="example.com"),
        kind=EventKind.GRADE_DROPPED,
        severity="",
        summary="Grade dropped from B to D (a sample event: this is a test alert)",
        data={"before": "B", "after": "D"},
        created_at=timezone.now(),
    )
    subject = f"mailsec: test alert to {channel.name}"
    delivery = AlertDelivery.objects.create(
        channel=channel,
        subject=subject[:300],
        payload=build_payload(channel.organization, [sample], subject=subject, test=True),
        is_test=True,
    )
    return deliver(delivery.pk)


def sent_to_log(channel: AlertChannel) -> bool:
    """Whether an e-mail to this channel only lands in the log: without MAILSEC_EMAIL_HOST,
    settings write messages to the console backend, i.e. the sending process's output."""
    return channel.kind == ChannelKind.EMAIL and not settings.EMAIL_HOST


def enable_channel(channel: AlertChannel) -> None:
    channel.enabled, channel.consecutive_failures, channel.disabled_reason = True, 0, ""
    channel.save(update_fields=["enabled", "consecutive_failures", "disabled_reason"])


def disable_channel(channel: AlertChannel, by) -> None:
    channel.enabled = False
    channel.disabled_reason = f"Disabled by {by} on {timezone.now():%Y-%m-%d %H:%M} UTC"[:300]
    channel.save(update_fields=["enabled", "disabled_reason"])
