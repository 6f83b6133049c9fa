"""A new sender is news: the first time a sender shows up in a team's reports of a domain,
with at least MAILSEC_NEW_SENDER_MESSAGES messages and no mark from the team, it is a domain
event (EventKind.NEW_SENDER), alerted through the team's channels like a check's changes.

The senders of a domain's first reports are its baseline: noted, not news (as a domain's
first check run has no changes). Nor is a report that ended more than NEWS_DAYS ago: importing
last year's reports tells of last year's senders, not of news."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from domains import alerts
from domains.models import Domain, DomainEvent, EventKind
from reports.models import AggregateReport, SeenSender
from reports.senders.report import marks_of, senders_between

NEWS_DAYS = 7


def note_senders(report: AggregateReport, now=None) -> list[DomainEvent]:
    """Remember the senders of the report's days; the events of those new and unmarked."""
    now = now or timezone.now()
    if report.organization_id is None:
        return []
    team, name = report.organization_id, report.domain
    since, until = report.begin.date(), max(report.begin.date(), report.end.date())
    domain = Domain.objects.filter(organization_id=team, name=name).first()
    marks = marks_of(domain) if domain else {}
    senders = senders_between(team, name, since, until, marks)
    seen = SeenSender.objects.filter(organization_id=team, domain=name)
    baseline = not seen.exists()
    known = set(seen.filter(sender__in=[s.key for s in senders]).values_list("sender", flat=True))
    new = []
    for sender in senders:
        if sender.key in known:
            continue
        _, created = SeenSender.objects.get_or_create(
            organization_id=team, domain=name, sender=sender.key, defaults={"first_seen": since}
        )
        if created:  # another worker noting the same sender makes one event, not two
            new.append(sender)
    threshold = settings.MAILSEC_NEW_SENDER_MESSAGES
    news = [s for s in new if s.messages >= threshold and s.mark is None]
    stale = report.end < now - timedelta(days=NEWS_DAYS)
    if baseline or stale or domain is None or not news:
        return []
    events = DomainEvent.objects.bulk_create(
        [
            DomainEvent(
                domain=domain,
                created_at=now,
                kind=EventKind.NEW_SENDER,
                summary=(
                    f"New sender {s.label}: {s.messages} messages, "
                    f"{s.pass_rate:.0f}% DMARC pass ({s.classification.label.lower()})"
                )[:300],
                data={
                    "sender": s.key,
                    "label": s.label,
                    "messages": s.messages,
                    "dmarc_pass": s.dmarc_pass,
                    "classification": str(s.classification),
                    "ptr": s.ptr,
                },
            )
            for s in news
        ]
    )
    alerts.notify(events)
    return events
