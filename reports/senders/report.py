"""What the senders pages and `manage.py senders` show: a domain's senders over a range,
read from the daily rollups (never the records) joined to what enrichment found, in a bounded
number of queries however many addresses there are."""

from __future__ import annotations

import csv
import io
import ipaddress
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter

from django.db import connection
from django.db.models import Q, Sum

from domains.models import Domain
from reports.analytics import summed_sources
from reports.models import (
    AggregateReport,
    DailyRollup,
    PtrStatus,
    ReportedSelector,
    SenderMark,
    SourceAddress,
)
from reports.ranges import DateRange
from reports.senders.classify import Classification, Numbers, classify
from reports.senders.readiness import DnsFacts, Policy, Readiness, assess
from reports.senders.services import IPV4_BLOCK, Service, bases_of, sender_of

SUMS = {
    "messages": "messages",
    "dmarc_pass": "dmarc_pass",
    "spf_aligned": "spf_pass",
    "dkim_aligned": "dkim_pass",
    "quarantined": "disposition_quarantine",
    "rejected": "disposition_reject",
}
UNKNOWN = frozenset({PtrStatus.PENDING, PtrStatus.FAILED})
CSV_COLUMNS = [
    "sender", "service", "service_type", "base_domain", "ptr", "fcrdns", "ips", "country",
    "messages", "dmarc_pass", "spf_aligned", "dkim_aligned", "quarantined", "rejected",
    "classification", "mark",
]  # fmt: skip


def _busiest(counts: dict[str, int]) -> str | None:
    """The key with the most messages, the first seen of equals."""
    return max(counts.items(), key=itemgetter(1))[0] if counts else None


@dataclass
class Sender:
    key: str
    label: str
    service: Service | None = None
    block: str = ""
    base_domains: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)
    # name -> messages, country -> messages (dicts: a page makes a Sender per address block)
    ptrs: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    unconfirmed: int = 0  # addresses with a PTR name that does not resolve back
    unknown: int = 0  # addresses not looked up yet, or whose lookup failed
    messages: int = 0
    dmarc_pass: int = 0
    spf_aligned: int = 0
    dkim_aligned: int = 0
    quarantined: int = 0
    rejected: int = 0
    mark: str | None = None
    classification: Classification = Classification.SUSPICIOUS

    def add(self, address: Address | None, ip: str, sums: tuple[int, ...]) -> None:
        """One address's sums, in the order of SUMS (a page adds thousands)."""
        self.ips.add(ip)
        messages, dmarc_pass, spf, dkim, quarantined, rejected = sums
        self.messages += messages
        self.dmarc_pass += dmarc_pass
        self.spf_aligned += spf
        self.dkim_aligned += dkim
        self.quarantined += quarantined
        self.rejected += rejected
        if address is None or address.ptr_status in UNKNOWN:
            self.unknown += 1
            return
        if address.ptr:
            self.ptrs[address.ptr] = self.ptrs.get(address.ptr, 0) + messages
            if address.fcrdns is not True:
                self.unconfirmed += 1
            else:
                self.base_domains.add(address.base_domain)
        if address.country:
            self.countries[address.country] = self.countries.get(address.country, 0) + messages

    @property
    def ptr(self) -> str | None:
        return _busiest(self.ptrs)

    @property
    def base_domain(self) -> str | None:
        return min(self.base_domains) if self.base_domains else None

    @property
    def fcrdns(self) -> bool | None:
        """True for a sender known by its confirmed name; False for a block with unconfirmed
        names; None for a block without names."""
        if not self.block:
            return True
        return False if self.unconfirmed else None

    @property
    def country(self) -> str | None:
        return _busiest(self.countries)

    @property
    def pass_rate(self) -> float | None:
        return 100.0 * self.dmarc_pass / self.messages if self.messages else None

    @property
    def service_type(self) -> str | None:
        return self.service.type if self.service else None

    def as_json(self) -> dict:
        return {
            "service": self.service.name if self.service else None,
            "service_type": self.service_type,
            "base_domain": self.base_domain,
            "ptr": self.ptr,
            "fcrdns": self.fcrdns,
            "ips": len(self.ips),
            "country": self.country,
            "messages": self.messages,
            "dmarc_pass": self.dmarc_pass,
            "spf_aligned": self.spf_aligned,
            "dkim_aligned": self.dkim_aligned,
            "classification": str(self.classification),
        }

    def csv_row(self) -> list:
        data = self.as_json()
        return [
            self.label, data["service"] or "", data["service_type"] or "",
            data["base_domain"] or "", data["ptr"] or "",
            "" if self.fcrdns is None else str(self.fcrdns).lower(), len(self.ips),
            data["country"] or "", self.messages, self.dmarc_pass, self.spf_aligned,
            self.dkim_aligned, self.quarantined, self.rejected, str(self.classification),
            self.mark or "",
        ]  # fmt: skip


def senders_between(
    organization_id: int,
    name: str,
    since: date,
    until: date,
    marks: dict | None = None,
    only: Q | None = None,
) -> list[Sender]:
    """The senders of a policy domain in a team's reports, most messages first: one query
    (the sums per address, added up by the database from the monthly and daily rollups, each
    address joined to what enrichment found of it), then grouped into senders here. `only`:
    a condition on the addresses read (candidates_of())."""
    senders: dict[str, Sender] = {}
    for ip, sums, address in _per_address(organization_id, name, since, until, only):
        confirmed = bool(address and address.fcrdns is True)
        who = sender_of(ip, address.base_domain if address else "", confirmed)
        sender = senders.get(who.key)
        if sender is None:
            sender = senders[who.key] = Sender(who.key, who.label, who.service, who.block)
        sender.add(address, ip, sums)
    marks = marks or {}
    for sender in senders.values():
        sender.mark = marks.get(sender.key)
        sender.classification = classify(
            Numbers(sender.messages, sender.dmarc_pass, sender.spf_aligned, sender.dkim_aligned),
            mark=sender.mark,
            known_service=sender.service is not None,
            forwarding_service=bool(sender.service and sender.service.forwards),
        )
    return sorted(senders.values(), key=lambda s: (-s.messages, s.label))


@dataclass(frozen=True)
class Address:
    """What enrichment found of one source address (a row of SourceAddress, as read here)."""

    ptr_status: str
    ptr: str
    fcrdns: bool | None
    base_domain: str
    country: str


def _per_address(organization_id: int, name: str, since: date, until: date, only: Q | None = None):
    """(ip, sums in the order of SUMS, Address or None) for every address that sent in the
    range (of those `only` allows): one query."""
    sql, params = summed_sources(organization_id, name, since, until, SUMS, only=only)
    q = connection.ops.quote_name
    keys = list(SUMS)
    summed = ", ".join(f"s.{q(key)}" for key in keys)
    joined = (
        f'SELECT s."source_ip", {summed}, a."ptr_status", a."ptr", a."fcrdns", '  # noqa: S608  (Django's SQL, values as parameters)
        f'a."base_domain", a."country" FROM ({sql}) s '
        f'LEFT JOIN {q(SourceAddress._meta.db_table)} a ON a."ip" = s."source_ip"'
    )
    with connection.cursor() as cursor:
        cursor.execute(joined, params)
        width = 1 + len(keys)
        for row in cursor.fetchall():
            sums = row[1:width]  # sums of NOT NULL columns: never NULL
            status, ptr, fcrdns, base_domain, country = row[width:]
            address = None
            if status is not None:
                fcrdns = fcrdns if fcrdns is None else bool(fcrdns)  # SQLite: 0/1
                address = Address(status, ptr, fcrdns, base_domain, country)
            yield str(row[0]), sums, address


def marks_of(domain: Domain) -> dict[str, str]:
    return dict(SenderMark.objects.filter(domain=domain).values_list("sender", "verdict"))


def published_policy(domain: Domain, since: date, until: date) -> Policy:
    """The policy the latest report of the range saw published (the receivers' view): of the
    reports covering some of its (UTC) days."""
    days = DateRange(since, until)
    latest = (
        AggregateReport.objects.filter(
            organization_id=domain.organization_id,
            domain=domain.name,
            begin__lt=days.end,
            end__gte=days.start,
        )
        .order_by("-begin", "-id")
        .values("p", "sp", "pct")
        .first()
    )
    if latest is None:
        return Policy()
    return Policy(latest["p"].lower(), latest["sp"].lower(), latest["pct"])


def dns_facts(domain: Domain) -> DnsFacts:
    """What the domain's latest check found (2 queries), and the selectors its reports saw."""
    reported = tuple(ReportedSelector.for_domain(domain.organization_id, domain.name))
    run = domain.last_run
    if run is None:
        return DnsFacts(reported_selectors=reported)
    categories = run.categories or {}
    spf = " ".join((categories.get("spf", {}).get("records") or {}).get("TXT") or [])
    keys = (categories.get("dkim", {}).get("records") or {}).get("DKIM") or {}
    findings = dict(run.findings.values_list("kind", "pk"))
    return DnsFacts(spf.lower(), frozenset(keys), reported, findings, checked=True)


@dataclass
class SendersView:
    domain: Domain
    since: date
    until: date
    senders: list[Sender]
    readiness: Readiness

    @property
    def unknown(self) -> int:
        return sum(s.unknown for s in self.senders)

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for sender in self.senders:
            writer.writerow(sender.csv_row())
        return out.getvalue()


def senders_view(domain: Domain, since: date, until: date) -> SendersView:
    """Everything the senders page, its CSV and the command show (a bounded number of
    queries: rollups, addresses, marks, policy, selectors, latest run and its findings)."""
    domain = Domain.objects.select_related("last_run").get(pk=domain.pk)
    senders = senders_between(domain.organization_id, domain.name, since, until, marks_of(domain))
    readiness = assess(senders, published_policy(domain, since, until), dns_facts(domain))
    return SendersView(domain, since, until, senders, readiness)


def candidates_of(key: str) -> Q | None:
    """A condition on source addresses that every address of the sender `key` meets (and few
    others), so that a sender's page need not group every address of the range: a block's
    addresses (by the database's order of addresses: PostgreSQL's inet, SQLite's text), the
    addresses whose confirmed name has the base domain or one of the service's. None: any
    address (an IPv6 block on SQLite, whose text does not sort by address). ValueError: no
    sender has that key."""
    kind, _colon, value = key.partition(":")
    if kind == "net":
        block = ipaddress.ip_network(value)  # ValueError: not a block
        if connection.vendor == "postgresql":
            return Q(source_ip__gte=str(block[0]), source_ip__lte=str(block[-1]))
        if block.version == 4 and block.prefixlen == IPV4_BLOCK:
            # Dotted quads "a.b.c.N": after "a.b.c." and before "a.b.c/" ("/" follows ".").
            prefix = value.rsplit(".", 1)[0]
            return Q(source_ip__gt=f"{prefix}.", source_ip__lt=f"{prefix}/")
        return None
    if kind == "domain":
        bases = [value]
    elif kind == "service":
        bases = sorted(bases_of(value))
    else:
        raise ValueError(key)
    named = SourceAddress.objects.filter(fcrdns=True, base_domain__in=bases).values("ip")
    return Q(source_ip__in=named)


def one_sender(domain: Domain, since: date, until: date, key: str) -> Sender | None:
    """The sender `key` of the domain over the range, as senders_view() has it, from its
    candidate addresses alone: one query (and the marks)."""
    try:
        only = candidates_of(key)
    except ValueError:
        return None
    senders = senders_between(
        domain.organization_id, domain.name, since, until, marks_of(domain), only
    )
    return next((s for s in senders if s.key == key), None)


def daily(domain: Domain, sender: Sender, since: date, until: date) -> list[dict]:
    """The sender's numbers per day of the range (days without mail left out)."""
    rows = DailyRollup.objects.filter(organization_id=domain.organization_id, domain=domain.name)
    if len(sender.ips) <= 500:
        # Each (day, address) sought in the identity index (team, domain, day, address): the
        # days listed, and no range beside them (SQLite then reads the range), which reads
        # every address's rows of each day (a year of one address among a million records:
        # 2 ms instead of 32 on SQLite, without an index by address that ingestion would keep
        # up, a fifth of a report's import).
        listed = DateRange(since, until).each_day()
        rows = rows.filter(day__in=listed, source_ip__in=sorted(sender.ips))
    else:
        rows = rows.filter(day__gte=since, day__lte=until)
    days: dict[date, dict] = {}
    per_day = rows.values("day", "source_ip").annotate(**{k: Sum(v) for k, v in SUMS.items()})
    for row in per_day.order_by("day"):
        if row["source_ip"] not in sender.ips:
            continue
        day = days.setdefault(row["day"], {"day": row["day"]} | {k: 0 for k in SUMS})
        for name in SUMS:
            day[name] += row[name] or 0
    for day in days.values():
        day["pass_rate"] = 100.0 * day["dmarc_pass"] / day["messages"] if day["messages"] else None
    return list(days.values())
