"""The worker's part: what reverse DNS and the registries say of each source address.

Ingestion only notes a stored report in PendingSenders, in the report's own transaction (one
row; at most one task published per NUDGE_AFTER seconds per process, so no broker round trip
per report); the worker drains them in batches on the `ingest` queue (reports/tasks.py), paced
so that it leaves the machine's CPU and the database's write lock to ingestion half the time
(nine tenths of it while ingestion is storing reports), never while a page is asked for.
Every lookup goes through domains/dns.py; a lookup that fails (timeout, SERVFAIL) is stored as
failed and asked again after FAILED_FOR, never "no PTR".
The country is the one a Regional Internet Registry assigned the address block to, from the
`iptocc` package's embedded data: no network at run time.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic, sleep

import dns.reversename
import iptocc
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from domains.dns import DnsSession, LookupFailed, name_text
from domains.names import org_domain
from reports.models import (
    AggregateRecord,
    AggregateReport,
    DailyRollup,
    PendingSenders,
    PtrStatus,
    SourceAddress,
)
from reports.senders import news

logger = logging.getLogger(__name__)

FOUND_FOR = timedelta(days=7)  # a PTR record (or its absence) is looked up again after this
NONE_FOR = timedelta(days=2)
FAILED_FOR = timedelta(minutes=30)  # a failed lookup: "unknown, retry later"
BATCH = 1000  # addresses per DNS session: all in flight at once, then stored
NUDGE_AFTER = 5.0  # seconds: a drain is queued this long after the first report noted
DRAIN_REPORTS = 5  # reports claimed by a drain at a time (their addresses: up to thousands)
DRAIN_FOR = 30.0  # seconds a drain task works before it queues the next (parses interleave)
DUTY = 0.5  # the share of its time a drain works; it sleeps the rest (ingestion's share)
BUSY_DUTY = 0.1  # the share while ingestion is storing reports: it comes first
LEASE = timedelta(minutes=10)  # a claimed report, if its drain dies, is drained again after
NAMES_PER_ADDRESS = 3  # PTR names whose forward records are asked (almost always one)
RECENT_DAYS = 30  # addresses refreshed by the periodic task: those seen this recently


@dataclass
class Looked:
    ip: str
    status: str
    ptr: str = ""
    fcrdns: bool | None = None

    @property
    def base_domain(self) -> str:
        return org_domain(self.ptr) if self.ptr else ""


def normal(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


def reverse_name(ip: str) -> str:
    return dns.reversename.from_address(ip).to_text(omit_final_dot=True)


def look_up(ips: list[str], session: DnsSession) -> list[Looked]:
    """PTR names of `ips`, forward-confirmed: all PTR lookups in flight at once, then all
    forward ones."""
    session.prefetch(*[(reverse_name(ip), "PTR") for ip in ips])
    names: dict[str, list[str]] = {}
    looked: dict[str, Looked] = {}
    for ip in ips:
        try:
            answer = session.lookup(reverse_name(ip), "PTR")
        except LookupFailed:
            looked[ip] = Looked(ip, PtrStatus.FAILED)
            continue
        found = sorted({name_text(r.target) for r in answer.rdatas})[:NAMES_PER_ADDRESS]
        if not found:
            looked[ip] = Looked(ip, PtrStatus.NONE)
        names[ip] = found
    forward = {ip: "A" if ipaddress.ip_address(ip).version == 4 else "AAAA" for ip in names}
    session.prefetch(*[(n, forward[ip]) for ip, found in names.items() for n in found])
    for ip, found in names.items():
        if found:
            looked[ip] = _confirm(ip, found, forward[ip], session)
    return [looked[ip] for ip in ips]


def _confirm(ip: str, names: list[str], rdtype: str, session: DnsSession) -> Looked:
    """The first name that resolves back to `ip`; else the first name, unconfirmed (False),
    or untested (None) when a forward lookup failed."""
    address, failed = ipaddress.ip_address(ip), False
    for name in names:
        try:
            answer = session.lookup(name, rdtype)
        except LookupFailed:
            failed = True
            continue
        if any(ipaddress.ip_address(r.address) == address for r in answer.rdatas):
            return Looked(ip, PtrStatus.FOUND, name, True)
    return Looked(ip, PtrStatus.FOUND, names[0], None if failed else False)


def due(ips, now=None) -> list[str]:
    """Those of `ips` never looked up, or whose lookup has expired."""
    now = now or timezone.now()
    ips = sorted({normal(ip) for ip in ips})
    fresh: set[str] = set()
    for start in range(0, len(ips), BATCH):
        chunk = ips[start : start + BATCH]
        rows = SourceAddress.objects.filter(ip__in=chunk, expires_at__gt=now)
        fresh.update(rows.values_list("ip", flat=True))
    return [ip for ip in ips if ip not in fresh]


def enrich(ips, *, nameservers=None, now=None) -> dict[str, int]:
    """Look up and store `ips` (all of them: see due()); counts by PTR status."""
    counts = {status: 0 for status in PtrStatus.values}
    ips = list(ips)
    for start in range(0, len(ips), BATCH):
        chunk = ips[start : start + BATCH]
        session = DnsSession(nameservers)
        looked = look_up(chunk, session)
        _store(looked, iptocc.country_code(chunk), now or timezone.now())
        for item in looked:
            counts[item.status] += 1
    return counts


def _store(looked: list[Looked], countries: list[str | None], now) -> None:
    keep = {PtrStatus.FOUND: FOUND_FOR, PtrStatus.NONE: NONE_FOR, PtrStatus.FAILED: FAILED_FOR}
    rows = [
        SourceAddress(
            ip=item.ip,
            ptr_status=item.status,
            ptr=item.ptr[:253],
            fcrdns=item.fcrdns,
            base_domain=item.base_domain[:253],
            country=(country or "")[:2],
            looked_up_at=now,
            expires_at=now + keep[item.status],
        )
        for item, country in zip(looked, countries, strict=True)
    ]
    SourceAddress.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["ip"],
        update_fields=[
            "ptr_status",
            "ptr",
            "fcrdns",
            "base_domain",
            "country",
            "looked_up_at",
            "expires_at",
        ],
    )


def report_sources(report_id: int) -> list[str]:
    """The distinct source addresses of one stored report."""
    rows = AggregateRecord.objects.filter(report_id=report_id).values_list("source_ip", flat=True)
    return list(rows.distinct())


def enrich_report(report_id: int, *, nameservers=None) -> dict[str, int]:
    return enrich(due(report_sources(report_id)), nameservers=nameservers)


def enrich_later(report_id: int) -> None:
    """Note a stored report for the drain, in the caller's transaction; once it commits, make
    sure a drain is queued."""
    PendingSenders.objects.bulk_create([PendingSenders(report_id=report_id)], ignore_conflicts=True)
    transaction.on_commit(_nudge)


_nudged = {"until": 0.0}


def _nudge() -> None:
    """Queue a drain to run NUDGE_AFTER seconds from now, unless this process queued one that
    has not run yet: it drains every report committed before it runs. Beat drains every
    minute anyway (a lost task, a broker down: the reports wait, nothing is lost)."""
    now = monotonic()
    if now < _nudged["until"]:
        return
    _nudged["until"] = now + NUDGE_AFTER
    from reports.tasks import drain_pending_senders  # the tasks import this module

    try:
        drain_pending_senders.apply_async(countdown=NUDGE_AFTER)
    except OperationalError:
        logger.warning("Could not queue the senders' drain: beat's will take the reports")


def _claim(count: int, now) -> list[int]:
    """Up to `count` pending reports no other drain holds, leased to this one."""
    free = Q(claimed_until=None) | Q(claimed_until__lt=now)
    with transaction.atomic():
        rows = PendingSenders.objects.filter(free).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        pks = list(rows.values_list("pk", flat=True)[:count])
        PendingSenders.objects.filter(pk__in=pks).update(claimed_until=now + LEASE)
    return pks


def _newest_pending() -> int:
    return PendingSenders.objects.aggregate(newest=Max("pk"))["newest"] or 0


def drain(
    *,
    nameservers=None,
    budget: float = DRAIN_FOR,
    duty: float = DUTY,
    busy_duty: float = BUSY_DUTY,
) -> dict[str, int]:
    """Look up the due addresses of pending reports, then note their senders (news.py), batch
    after batch until none is left or `budget` seconds have gone; sleeps (1 - duty) / duty of
    each batch's time after it, or (1 - busy_duty) / busy_duty when reports were stored
    during the batch (ingestion is running: it gets the machine and the database first).
    Returns the reports done and those still pending."""
    started, done = monotonic(), 0
    newest = _newest_pending()  # the pks only grow (AUTOINCREMENT on SQLite, a sequence)
    while monotonic() - started < budget:
        pks = _claim(DRAIN_REPORTS, timezone.now())
        if not pks:
            break
        pending = PendingSenders.objects.filter(pk__in=pks)
        reports = list(pending.values_list("report_id", flat=True))
        records = AggregateRecord.objects.filter(report_id__in=reports)
        ips = due(records.values_list("source_ip", flat=True).distinct())
        for start in range(0, len(ips), BATCH):
            began = monotonic()
            enrich(ips[start : start + BATCH], nameservers=nameservers)
            took, latest = monotonic() - began, _newest_pending()
            share = busy_duty if latest > newest else duty
            newest = max(newest, latest)
            sleep(took * (1 - share) / share)
        for report in AggregateReport.objects.filter(pk__in=reports):
            news.note_senders(report)
        pending.delete()
        done += len(pks)
    return {"done": done, "pending": PendingSenders.objects.count()}


def refresh(limit: int = 20_000, now=None) -> dict[str, int]:
    """Look up the addresses seen in the last RECENT_DAYS that were never looked up (their
    report's task was lost) or whose lookup expired (failed lookups expire after FAILED_FOR:
    this is their retry)."""
    now = now or timezone.now()
    since = (now - timedelta(days=RECENT_DAYS)).date()
    known = SourceAddress.objects.filter(ip=OuterRef("source_ip"))
    never = DailyRollup.objects.filter(day__gte=since).exclude(Exists(known))
    ips = list(never.values_list("source_ip", flat=True).distinct()[:limit])
    recent = DailyRollup.objects.filter(source_ip=OuterRef("ip"), day__gte=since)
    expired = SourceAddress.objects.filter(expires_at__lte=now).filter(Exists(recent))
    ips += list(expired.order_by("expires_at").values_list("ip", flat=True)[: limit - len(ips)])
    return enrich(ips, now=now)
