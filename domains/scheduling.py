"""When domains are checked: the dispatcher's race-free claim, "check now", and one check.

DNS checks and protocol probes have their own schedules (`check_interval`, `probe_interval`).
A probe run (queue "probes") checks DNS too and probes the mail servers, reusing any probe of
the same address and port younger than the domain's probe interval; a DNS check (queue "checks")
judges the mail servers from the stored probes, without connecting to them. "Check now" is a
probe run with fresh probes, so it shows both."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.utils import timezone
from django.utils.translation import gettext_noop

from domains import changes, engine
from domains.messages import Message, msg
from domains.models import CheckRun, Domain, DomainEvent, ManualCheck
from domains.probing import LiveProbes, StoredProbes
from reports.models import ReportedSelector

CLAIM_BATCH = 500  # domains one dispatcher query claims at most
# One dispatcher pass claims batch after batch until none is due or this long has passed (the
# task's soft time limit is 50 s): one batch a minute capped an installation at 500 checks a
# minute, 180,000 domains at a 6-hour interval (docs/scaling.md).
DISPATCH_BUDGET = 30.0  # seconds
PROBE_BATCH = 25  # domains per probe task: they share one Prober (one probe per address/port)
DOMAIN_COOLDOWN = timedelta(seconds=60)  # "check now" on one domain at most this often
USER_LIMIT, USER_WINDOW = 10, timedelta(minutes=10)


class RateLimited(Exception):
    """str() is the English (the API's answer); `message` renders in the reader's language."""

    def __init__(self, message: Message):
        super().__init__(message.english())
        self.message = message


@dataclass(frozen=True)
class Schedule:
    """One of a domain's two schedules: its DNS checks and its protocol probes, each with its
    own next time and interval."""

    next_at: str  # the field holding when it is due next
    interval: str  # the field holding how often

    def due(self, now) -> Q:
        return Q(**{f"{self.next_at}__isnull": True}) | Q(**{f"{self.next_at}__lte": now})

    def claim(self, domain_id: int, now) -> bool:
        """Move the domain's next time one interval ahead, if it is due: a conditional UPDATE,
        so of two dispatchers (or a dispatcher and a retry) only one sees a row change."""
        later = ExpressionWrapper(Value(now) + F(self.interval), output_field=DateTimeField())
        rows = Domain.objects.filter(self.due(now), pk=domain_id)
        return rows.update(**{self.next_at: later}) == 1

    def claim_due(self, now) -> list[int]:
        """Claim the due domains, the longest overdue first (CLAIM_BATCH at most)."""
        return self.claim_batch(now)[0]

    def claim_batch(self, now) -> tuple[list[int], bool]:
        """Claim one batch of due domains; also whether the batch was full (more may be due)."""
        candidates = list(
            Domain.objects.filter(self.due(now))
            .order_by(F(self.next_at).asc(nulls_first=True))
            .values_list("pk", flat=True)[:CLAIM_BATCH]
        )
        return [pk for pk in candidates if self.claim(pk, now)], len(candidates) == CLAIM_BATCH

    def claim_all_due(self, now, on_claimed) -> int:
        """Claim batch after batch (`on_claimed(batch)` for each) until none is due or
        DISPATCH_BUDGET has passed; returns how many."""
        started, total = time.monotonic(), 0
        while True:
            # A batch's claims commit together, and its tasks are sent once they have (the
            # callers' on_commit): a database connection lost mid-batch rolls the whole batch
            # back, still due for the next pass. Claims committed one by one left the batch's
            # claimed domains without a task when the connection dropped before they were
            # sent: 286 domains of a 10,000-domain harness run, checked only once the reaper
            # found them half an hour later.
            with transaction.atomic():
                claimed, full = self.claim_batch(now)
                if claimed:
                    on_claimed(claimed)
            total += len(claimed)
            if not full or time.monotonic() - started > DISPATCH_BUDGET:
                return total


CHECKS = Schedule("next_check_at", "check_interval")
PROBES = Schedule("next_probe_at", "probe_interval")


def claim(domain_id: int, now) -> bool:
    return CHECKS.claim(domain_id, now)


def dispatch_due_probes(now=None, enqueue=None) -> int:
    """Claim the domains due for probes and enqueue them in batches of PROBE_BATCH
    (`enqueue(domain_ids)`, by default the Celery task on the probes queue)."""
    if enqueue is None:
        from domains.tasks import probe_domains_task

        enqueue = probe_domains_task.delay

    def on_claimed(claimed: list[int]) -> None:
        for i in range(0, len(claimed), PROBE_BATCH):
            batch = claimed[i : i + PROBE_BATCH]
            transaction.on_commit(lambda batch=batch: enqueue(batch))

    return PROBES.claim_all_due(now or timezone.now(), on_claimed)


def dispatch_due(now=None, enqueue=None) -> int:
    """Claim the due domains and enqueue one check each (`enqueue(domain_id)`, by default the
    Celery task, told when the domain was claimed) once the claim is committed; returns how
    many."""
    now = now or timezone.now()
    if enqueue is None:
        from domains.tasks import check_domain_task

        def enqueue(pk: int) -> None:
            check_domain_task.delay(pk, claimed_at=now.isoformat())

    def on_claimed(claimed: list[int]) -> None:
        for pk in claimed:
            transaction.on_commit(lambda pk=pk: enqueue(pk))

    return CHECKS.claim_all_due(now, on_claimed)


def request_check(domain: Domain, user) -> ManualCheck:
    """ "Check now": queue a check of the domain, unless it or the user asked too recently."""
    from domains.tasks import probe_domains_task

    now = timezone.now()
    if ManualCheck.objects.filter(domain=domain, requested_at__gt=now - DOMAIN_COOLDOWN).exists():
        raise RateLimited(
            msg(
                gettext_noop("%(domain)s was checked less than a minute ago."),
                domain=domain.display_name,
            )
        )
    recent = ManualCheck.objects.filter(user=user, requested_at__gt=now - USER_WINDOW).count()
    if recent >= USER_LIMIT:
        raise RateLimited(
            msg(
                gettext_noop("You asked for %(count)s checks in the last 10 minutes; wait a bit."),
                count=recent,
            )
        )
    manual = ManualCheck.objects.create(domain=domain, user=user, requested_at=now)
    transaction.on_commit(lambda: probe_domains_task.delay([domain.pk], manual.pk))
    return manual


def _selectors(domain: Domain) -> list[str]:
    """The domain's own selectors and those its team's reports saw (never another team's)."""
    return domain.dkim_selectors + [
        s
        for s in ReportedSelector.for_domain(domain.organization_id, domain.name)
        if s not in domain.dkim_selectors
    ]


def run_check(
    domain_id: int, manual_id: int | None = None, claimed_at: datetime | None = None
) -> CheckRun | None:
    """Check one domain's DNS, judge its mail servers from the stored probes, store the run and
    its events, and hand the events to the alerts. None when the domain was deleted meanwhile,
    or, for a scheduled check (`claimed_at`: when the dispatcher claimed it), when the domain
    has been checked since that claim: the same message delivered twice (Redis gives back what
    a killed worker held, after the reaper has queued the domain again) checks it once."""
    domain = Domain.objects.filter(pk=domain_id).first()
    manual = ManualCheck.objects.filter(pk=manual_id).first() if manual_id else None
    if domain is None:
        return None
    if claimed_at is not None and domain.last_checked_at and domain.last_checked_at >= claimed_at:
        return None
    if manual:
        ManualCheck.objects.filter(pk=manual.pk).update(state=ManualCheck.State.RUNNING)
    probe_due = domain.next_probe_at  # as it was before this check looked at the stored probes
    result = engine.check_domain(
        domain.name,
        dkim_selectors=_selectors(domain),
        access_hosts=domain.mail_access_hosts,
        probes=StoredProbes(),
    )
    run = record(domain, result, "manual" if manual else "schedule", manual)
    if _not_probed(run):
        # New mail servers (or none probed yet): probe them soon rather than at the next turn,
        # unless a probe run has ended meanwhile (it moved next_probe_at and probed them).
        Domain.objects.filter(
            pk=domain.pk, next_probe_at=probe_due, next_probe_at__gt=timezone.now()
        ).update(next_probe_at=timezone.now())
    return run


def run_probes(domain_ids: list[int], manual_id: int | None = None) -> list[CheckRun]:
    """A probe run of these domains as one batch: DNS checks, and the mail servers probed (each
    address and port once for the batch; a probe younger than the smallest probe interval of
    the batch is reused, none for "check now"). Every domain's run is stored as `run_check`'s."""
    domains = list(Domain.objects.filter(pk__in=domain_ids).order_by("pk"))
    manual = ManualCheck.objects.filter(pk=manual_id).first() if manual_id else None
    if manual:
        ManualCheck.objects.filter(pk=manual.pk).update(state=ManualCheck.State.RUNNING)
    if not domains:
        return []
    max_age = timedelta(0) if manual else min(d.probe_interval for d in domains)
    probes = LiveProbes(max_age)
    trigger = "manual" if manual else "probe"
    runs = []
    for batch in _one_name_each(domains):
        # Each team's domain is checked with its own settings (selectors its reports saw, mail
        # access hosts it configured), never another team's: a name two teams monitor is in
        # two batches, whose probes the second finds stored.
        results = engine.check_domains(
            [d.name for d in batch],
            selectors={d.name: _selectors(d) for d in batch},
            access_hosts={d.name: d.mail_access_hosts for d in batch},
            probes=probes,
        )
        runs += [
            record(d, result, trigger, manual) for d, result in zip(batch, results, strict=True)
        ]
    # The next probe run is an interval after this one's end (a DNS check that found servers
    # not yet probed may have asked for one meanwhile: this run has probed them).
    later = ExpressionWrapper(
        Value(timezone.now()) + F("probe_interval"), output_field=DateTimeField()
    )
    Domain.objects.filter(pk__in=domain_ids).update(next_probe_at=later)
    return runs


def _one_name_each(domains: list[Domain]) -> list[list[Domain]]:
    """The domains in batches in which no name appears twice."""
    batches: list[list[Domain]] = []
    for domain in domains:
        batch = next((b for b in batches if all(d.name != domain.name for d in b)), None)
        if batch is None:
            batch = []
            batches.append(batch)
        batch.append(domain)
    return batches


def record(domain: Domain, result, trigger: str, manual: ManualCheck | None = None) -> CheckRun:
    """Store a run, the events since the domain's previous run, and alert them."""
    with transaction.atomic():
        previous = CheckRun.objects.filter(
            pk=Domain.objects.filter(pk=domain.pk).values("last_run")[:1]
        ).first()
        run = CheckRun.objects.record(result, domain=domain, trigger=trigger)
        events = DomainEvent.objects.bulk_create(changes.compare(previous, run))
        if manual:
            ManualCheck.objects.filter(pk=manual.pk).update(state=ManualCheck.State.DONE, run=run)
        if events:
            from domains import alerts  # imports the tasks, which import this module

            alerts.notify(events)
    return run


def _not_probed(run: CheckRun) -> bool:
    return any(
        server.get("reach") == "pending"
        for category in engine.PROBE_CATEGORIES
        for server in (run.categories.get(category) or {}).get("servers", [])
    )
