"""When domains are checked: the dispatcher's race-free claim, "check now", and one check."""

from datetime import timedelta

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.utils import timezone

from domains import changes, engine
from domains.models import CheckRun, Domain, DomainEvent, ManualCheck
from reports.models import ReportedSelector

CLAIM_BATCH = 500  # domains one dispatcher pass enqueues at most
DOMAIN_COOLDOWN = timedelta(seconds=60)  # "check now" on one domain at most this often
USER_LIMIT, USER_WINDOW = 10, timedelta(minutes=10)


class RateLimited(Exception):
    pass


def due(now) -> Q:
    return Q(next_check_at__isnull=True) | Q(next_check_at__lte=now)


def claim(domain_id: int, now) -> bool:
    """Move the domain's next check one interval ahead, if it is due: a conditional UPDATE, so
    of two dispatchers (or a dispatcher and a retry) only one sees a row change."""
    later = ExpressionWrapper(Value(now) + F("check_interval"), output_field=DateTimeField())
    return Domain.objects.filter(due(now), pk=domain_id).update(next_check_at=later) == 1


def dispatch_due(now=None, enqueue=None) -> int:
    """Claim the due domains and enqueue one check each (`enqueue(domain_id)`, by default the
    Celery task) once the claim is committed; returns how many."""
    if enqueue is None:
        from domains.tasks import check_domain_task

        enqueue = check_domain_task.delay
    now = now or timezone.now()
    candidates = (
        Domain.objects.filter(due(now))
        .order_by(F("next_check_at").asc(nulls_first=True))
        .values_list("pk", flat=True)[:CLAIM_BATCH]
    )
    claimed = [pk for pk in candidates if claim(pk, now)]
    for pk in claimed:
        transaction.on_commit(lambda pk=pk: enqueue(pk))
    return len(claimed)


def request_check(domain: Domain, user) -> ManualCheck:
    """ "Check now": queue a check of the domain, unless it or the user asked too recently."""
    from domains.tasks import check_domain_task

    now = timezone.now()
    if ManualCheck.objects.filter(domain=domain, requested_at__gt=now - DOMAIN_COOLDOWN).exists():
        raise RateLimited(f"{domain.display_name} was checked less than a minute ago.")
    recent = ManualCheck.objects.filter(user=user, requested_at__gt=now - USER_WINDOW).count()
    if recent >= USER_LIMIT:
        raise RateLimited(f"You asked for {recent} checks in the last 10 minutes; wait a bit.")
    manual = ManualCheck.objects.create(domain=domain, user=user, requested_at=now)
    transaction.on_commit(lambda: check_domain_task.delay(domain.pk, manual.pk))
    return manual


def run_check(domain_id: int, manual_id: int | None = None) -> CheckRun | None:
    """Check one domain, store the run and its events, and hand the events to the alerts.
    None when the domain was deleted meanwhile."""
    domain = Domain.objects.filter(pk=domain_id).select_related("last_run").first()
    manual = ManualCheck.objects.filter(pk=manual_id).first() if manual_id else None
    if domain is None:
        return None
    if manual:
        ManualCheck.objects.filter(pk=manual.pk).update(state=ManualCheck.State.RUNNING)
    previous = domain.last_run
    selectors = domain.dkim_selectors + [
        s
        for s in ReportedSelector.for_domain(domain.organization_id, domain.name)
        if s not in domain.dkim_selectors
    ]
    result = engine.check_domain(domain.name, dkim_selectors=selectors)
    with transaction.atomic():
        run = CheckRun.objects.record(
            result, domain=domain, trigger="manual" if manual else "schedule"
        )
        events = DomainEvent.objects.bulk_create(changes.compare(previous, run))
        if manual:
            ManualCheck.objects.filter(pk=manual.pk).update(state=ManualCheck.State.DONE, run=run)
        if events:
            from domains import alerts  # imports the tasks, which import this module

            alerts.notify(events)
    return run
