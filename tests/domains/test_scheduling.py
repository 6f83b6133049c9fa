"""Scheduling: the race-free claim, dispatch through a real worker, "check now", history."""

import threading
import time
from datetime import date, timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from domains import scheduling
from domains.models import (
    CheckRun,
    Domain,
    DomainEvent,
    EventKind,
    ManualCheck,
    Organization,
)
from domains.tasks import dispatch_due_checks
from tests.domains import dns_world
from tests.knot import KnotServer


def run_in_threads(count, target):
    """`target(i)` in `count` threads started together; their results."""
    barrier, results = threading.Barrier(count), [None] * count

    def body(i):
        try:
            barrier.wait()
            results[i] = target(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_claims_at_once_give_one(acme):
    domains = Domain.objects.bulk_create(
        [Domain(organization=acme, name=f"d{i}.example") for i in range(15)]
    )
    now = timezone.now()
    for domain in domains:
        assert run_in_threads(2, lambda i, pk=domain.pk: scheduling.claim(pk, now)).count(True) == 1
        domain.refresh_from_db()
        assert domain.next_check_at == now + timedelta(hours=6)
    assert scheduling.claim(domains[0].pk, now) is False  # not due any more


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_enqueue_each_domain_once(acme):
    Domain.objects.bulk_create([Domain(organization=acme, name=f"d{i}.example") for i in range(40)])
    Domain.objects.filter(name="d0.example").update(
        next_check_at=timezone.now() + timedelta(hours=1)
    )
    queued = []
    counts = run_in_threads(2, lambda i: scheduling.dispatch_due(enqueue=queued.append))
    assert sum(counts) == 39
    assert sorted(queued) == sorted(
        Domain.objects.exclude(name="d0.example").values_list("pk", flat=True)
    )
    assert scheduling.dispatch_due(enqueue=queued.append) == 0


@pytest.mark.django_db(transaction=True)
def test_one_dispatcher_pass_claims_batch_after_batch(acme, monkeypatch):
    monkeypatch.setattr(scheduling, "CLAIM_BATCH", 5)
    Domain.objects.bulk_create([Domain(organization=acme, name=f"d{i}.example") for i in range(12)])
    queued = []
    assert scheduling.dispatch_due(enqueue=queued.append) == 12
    assert sorted(queued) == sorted(Domain.objects.values_list("pk", flat=True))
    assert scheduling.dispatch_due(enqueue=queued.append) == 0


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_mid_batch_claims_none_of_it(acme, monkeypatch):
    """The database going away after some of a batch's claims: none of them stays claimed
    without a task (they would wait half an hour for the reaper); the next pass claims them."""
    monkeypatch.setattr(scheduling, "CLAIM_BATCH", 5)
    Domain.objects.bulk_create([Domain(organization=acme, name=f"d{i}.example") for i in range(12)])
    claim, claims = scheduling.Schedule.claim, []

    def dropping(self, domain_id, now):
        if len(claims) == 8:  # the second batch, three claims in
            raise OperationalError("server closed the connection unexpectedly")
        claims.append(domain_id)
        return claim(self, domain_id, now)

    monkeypatch.setattr(scheduling.Schedule, "claim", dropping)
    queued = []
    with pytest.raises(OperationalError):
        scheduling.dispatch_due(enqueue=queued.append)
    assert len(queued) == 5  # the first batch, committed and sent
    due = Domain.objects.filter(next_check_at__isnull=True)
    assert due.count() == 7  # the second batch's three claims rolled back with it
    assert set(due.values_list("pk", flat=True)).isdisjoint(queued)
    monkeypatch.setattr(scheduling.Schedule, "claim", claim)
    assert scheduling.dispatch_due(enqueue=queued.append) == 7
    assert sorted(queued) == sorted(Domain.objects.values_list("pk", flat=True))


def test_a_dispatcher_pass_stops_at_its_budget(acme, monkeypatch):
    monkeypatch.setattr(scheduling, "CLAIM_BATCH", 5)
    monkeypatch.setattr(scheduling, "DISPATCH_BUDGET", -1.0)  # spent after the first batch
    Domain.objects.bulk_create([Domain(organization=acme, name=f"d{i}.example") for i in range(12)])
    assert scheduling.dispatch_due(enqueue=lambda pk: None) == 5
    assert scheduling.dispatch_due(enqueue=lambda pk: None) == 5  # the rest, next time


def test_due_follows_the_interval(acme):
    domain = Domain.objects.create(
        organization=acme, name="x.example", check_interval=timedelta(minutes=15)
    )
    now = timezone.now()
    assert scheduling.claim(domain.pk, now)
    assert not scheduling.claim(domain.pk, now + timedelta(minutes=14))
    assert scheduling.claim(domain.pk, now + timedelta(minutes=15))


@pytest.mark.django_db(transaction=True)
def test_a_dispatched_check_runs_on_a_real_worker(celery_worker, acme):
    domain = Domain.objects.create(organization=acme, name="good.test")
    try:
        # A new domain is due for both: its DNS check and its probe run.
        assert dispatch_due_checks.apply_async(ignore_result=False).get(timeout=60) == 2
    except Exception as exc:
        pytest.fail(f"dispatch failed ({exc!r}); worker log:\n{celery_worker.output()}")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if domain.runs.count() == 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no check run stored; worker log:\n{celery_worker.output()}")
    domain.refresh_from_db()
    runs = {run.trigger: run for run in domain.runs.all()}
    assert set(runs) == {"schedule", "probe"}
    for run in runs.values():
        # Nothing listens on port 25 of the MX host's address (127.0.0.10): no MX answers, so
        # SMTP could not be tested ("partial"); the DNS categories are judged as before.
        assert run.status == "partial", run.categories
        assert run.categories["dnssec"]["status"] == "pass"  # signed "test", anchored
        assert run.categories["spf"]["status"] == "pass"
    assert runs["probe"].categories["smtp"]["status"] == "error"
    assert domain.grade and domain.score == domain.last_run.score
    assert domain.next_check_at > timezone.now() + timedelta(hours=5)
    assert domain.next_probe_at > timezone.now() + timedelta(hours=23)


def test_check_now_is_rate_limited(alice, bob, acme):
    first = Domain.objects.create(organization=acme, name="one.example")
    manual = scheduling.request_check(first, alice)
    assert manual.state == ManualCheck.State.QUEUED
    with pytest.raises(scheduling.RateLimited, match="less than a minute ago"):
        scheduling.request_check(first, bob)
    ManualCheck.objects.update(requested_at=timezone.now() - timedelta(minutes=2))
    for i in range(9):
        other = Domain.objects.create(organization=acme, name=f"n{i}.example")
        scheduling.request_check(other, alice)
    last = Domain.objects.create(organization=acme, name="last.example")
    with pytest.raises(scheduling.RateLimited, match="10 checks"):
        scheduling.request_check(last, alice)
    scheduling.request_check(last, bob)  # the limit is per user


# --- history: two runs of one domain whose DNS changed in between ------------------------


def flip_zone(spf: str) -> dict:
    zones = dns_world.zones()
    zones["test"] += dns_world.good("flip.test", spf="flip.test. TXT " + dns_world.txt(spf))
    return zones


@pytest.fixture(scope="module")
def two_worlds(tmp_path_factory):
    """The same domain before (good) and after (SPF +all) a change, on two DNS servers."""
    before = KnotServer(
        tmp_path_factory.mktemp("before"), flip_zone("v=spf1 mx -all"), signed=["test"]
    )
    after = KnotServer(
        tmp_path_factory.mktemp("after"), flip_zone("v=spf1 mx +all"), signed=["test"]
    )
    before.start()
    after.start()
    yield before, after
    before.stop()
    after.stop()


def test_a_score_drop_becomes_events(two_worlds, acme, settings):
    before, after = two_worlds
    domain = Domain.objects.create(organization=acme, name="flip.test")
    settings.MAILSEC_DNS_NAMESERVERS = [(before.host, before.port)]
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = before.trust_anchors
    first = scheduling.run_check(domain.pk)
    assert DomainEvent.objects.count() == 0  # nothing to compare with
    settings.MAILSEC_DNS_NAMESERVERS = [(after.host, after.port)]
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = after.trust_anchors
    second = scheduling.run_check(domain.pk)
    assert second.score < first.score
    kinds = sorted(DomainEvent.objects.values_list("kind", flat=True))
    assert kinds == [EventKind.FINDING_APPEARED, EventKind.GRADE_DROPPED, EventKind.RECORD_CHANGED]
    appeared = DomainEvent.objects.get(kind=EventKind.FINDING_APPEARED)
    assert (appeared.severity, appeared.data["finding"]) == ("critical", "spf.all_pass")
    changed = DomainEvent.objects.get(kind=EventKind.RECORD_CHANGED)
    assert changed.data["after"]["TXT"] == ["v=spf1 mx +all"]
    # Back to good: resolved, raised, changed again.
    settings.MAILSEC_DNS_NAMESERVERS = [(before.host, before.port)]
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = before.trust_anchors
    scheduling.run_check(domain.pk)
    newest = set(
        DomainEvent.objects.filter(run=Domain.objects.get().last_run).values_list("kind", flat=True)
    )
    assert newest == {EventKind.FINDING_RESOLVED, EventKind.GRADE_RAISED, EventKind.RECORD_CHANGED}


def test_an_outage_is_not_a_resolution(two_worlds, acme, settings, knot):
    _, after = two_worlds
    domain = Domain.objects.create(organization=acme, name="flip.test")
    settings.MAILSEC_DNS_NAMESERVERS = [(after.host, after.port)]
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = after.trust_anchors
    scheduling.run_check(domain.pk)
    # Every lookup now fails with SERVFAIL.
    Domain.objects.filter(pk=domain.pk).update(name="broken.test")
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = knot.trust_anchors
    run = scheduling.run_check(domain.pk)
    assert run.status == "error"
    kinds = set(DomainEvent.objects.values_list("kind", flat=True))
    assert kinds == {EventKind.CHECK_FAILED}  # no "resolved", no grade change from nothing


def test_manual_check_records_its_run(alice, acme, knot, settings):
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    domain = Domain.objects.create(organization=acme, name="good.test")
    manual = ManualCheck.objects.create(domain=domain, user=alice, requested_at=timezone.now())
    run = scheduling.run_check(domain.pk, manual.pk)
    manual.refresh_from_db()
    assert (manual.state, manual.run, run.trigger) == ("done", run, "manual")


def test_a_deleted_domain_is_skipped(acme):
    assert scheduling.run_check(987654) is None


def test_a_scheduled_check_delivered_twice_checks_once(acme, knot, settings):
    """Redis gives back what a killed worker held (after its visibility timeout), when the
    reaper has long queued the domain again: the second delivery of the claim checks nothing."""
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    domain = Domain.objects.create(organization=acme, name="good.test")
    claimed_at = timezone.now()
    first = scheduling.run_check(domain.pk, claimed_at=claimed_at)
    assert first is not None
    assert scheduling.run_check(domain.pk, claimed_at=claimed_at) is None
    assert domain.runs.count() == 1
    # The next claim checks it again.
    assert scheduling.run_check(domain.pk, claimed_at=timezone.now()) is not None
    assert domain.runs.count() == 2


def test_retention_keeps_summaries(acme, knot, settings):
    from domains.retention import prune_run_details

    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    domain = Domain.objects.create(organization=acme, name="nodmarc.test")
    old = scheduling.run_check(domain.pk)
    latest = scheduling.run_check(domain.pk)
    CheckRun.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=100))
    CheckRun.objects.filter(pk=latest.pk).update(finished_at=timezone.now() - timedelta(days=100))
    assert prune_run_details(days=90) == 1  # the latest run keeps its details
    old.refresh_from_db()
    assert old.details_pruned and old.findings.count() == 0
    assert old.categories["dmarc"] == {"status": "fail", "score": 50}
    assert old.score is not None and old.grade
    assert latest.findings.count() > 0


def test_selectors_seen_in_reports_are_probed(acme, knot, settings):
    from reports.models import ReportedSelector

    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    domain = Domain.objects.create(organization=acme, name="customsel.test")
    unseen = scheduling.run_check(domain.pk)
    assert unseen.categories["dkim"]["status"] != "pass"
    other = Organization.objects.create(name="Other team")
    ReportedSelector.objects.create(
        organization=other,
        domain="customsel.test",
        selector="myselector",
        last_seen=date(2026, 1, 1),
    )
    still_unseen = scheduling.run_check(domain.pk)  # another team's reports saw it: not ours
    assert still_unseen.categories["dkim"]["status"] != "pass"
    ReportedSelector.objects.create(
        organization=acme,
        domain="customsel.test",
        selector="myselector",
        last_seen=date(2026, 1, 1),
    )
    seen = scheduling.run_check(domain.pk)
    assert seen.categories["dkim"]["status"] == "pass"
    assert not seen.findings.filter(category="dkim").exists()
