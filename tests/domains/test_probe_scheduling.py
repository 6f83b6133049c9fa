"""Probe runs as the scheduler makes them, against the mail lab: probes stored and reused within
the interval, DNS checks judging the stored probes, "check now" probing afresh, and a new open
relay becoming an alert."""

from datetime import timedelta

import pytest
from django.utils import timezone

from domains import scheduling
from domains.models import (
    AlertChannel,
    ChannelKind,
    Domain,
    DomainEvent,
    EventKind,
    ManualCheck,
    ServerProbe,
)
from tests.domains.test_probe_engine import https, knot, trust  # noqa: F401  (fixtures)


@pytest.fixture
def lab_world(settings, knot, trust):  # noqa: F811
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    settings.MAILSEC_TLS_CA_FILE = trust
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = knot.trust_anchors
    return knot


def probed_at(host: str) -> set:
    """When each of the host's ports was probed (its MX port 25, submission 465 and 587)."""
    return set(ServerProbe.objects.filter(host=host).values_list("port", "probed_at"))


def test_probes_are_stored_reused_and_judged_by_the_dns_checks(lab_world, acme):
    domain = Domain.objects.create(organization=acme, name="good.test")
    (run,) = scheduling.run_probes([domain.pk])
    assert run.trigger == "probe"
    assert run.categories["smtp"]["status"] == "pass"
    assert run.categories["smtp"]["servers"][0]["host"] == "mx-good.probes.test"
    first = probed_at("mx-good.probes.test")
    assert {port for port, _ in first} == {25, 465, 587}
    assert ServerProbe.objects.filter(host="mail.probes.test").count() == 4
    domain.refresh_from_db()
    assert domain.next_probe_at > timezone.now() + timedelta(hours=23)

    # Within the interval: the stored probes are reused, nothing is probed again.
    scheduling.run_probes([domain.pk])
    assert probed_at("mx-good.probes.test") == first

    # A DNS check between probe runs judges the stored probes, without connecting.
    dns_run = scheduling.run_check(domain.pk)
    assert dns_run.trigger == "schedule"
    assert dns_run.categories["smtp"] == run.categories["smtp"]
    assert dns_run.categories["imap"]["status"] == "pass"

    # "Check now" probes afresh.
    manual = ManualCheck.objects.create(domain=domain, requested_at=timezone.now())
    ServerProbe.objects.update(probed_at=timezone.now() - timedelta(hours=1))
    (checked,) = scheduling.run_probes([domain.pk], manual.pk)
    manual.refresh_from_db()
    assert (manual.state, manual.run, checked.trigger) == ("done", checked, "manual")
    assert min(at for _, at in probed_at("mx-good.probes.test")) > timezone.now() - timedelta(
        minutes=5
    )


def test_a_dns_check_of_servers_never_probed_asks_for_a_probe_run(lab_world, acme):
    later = timezone.now() + timedelta(hours=20)
    domain = Domain.objects.create(organization=acme, name="plain.test", next_probe_at=later)
    run = scheduling.run_check(domain.pk)
    smtp = run.categories["smtp"]
    assert smtp["status"] == "error"
    assert smtp["servers"][0]["reach"] == "pending"
    assert "not probed yet" in smtp["findings"][0]["detail"]
    domain.refresh_from_db()
    assert domain.next_probe_at <= timezone.now()


def test_dispatch_batches_the_due_probes(acme):
    Domain.objects.bulk_create(
        [Domain(organization=acme, name=f"d{i}.example") for i in range(scheduling.PROBE_BATCH + 3)]
    )
    batches = []
    assert scheduling.dispatch_due_probes(enqueue=batches.append) == scheduling.PROBE_BATCH + 3
    assert batches == []  # sent once the claim commits (the test's transaction never does)
    assert scheduling.dispatch_due_probes(enqueue=batches.append) == 0  # claimed already


@pytest.mark.django_db(transaction=True)
def test_dispatch_sends_batches_once_committed(acme):
    Domain.objects.bulk_create(
        [Domain(organization=acme, name=f"d{i}.example") for i in range(scheduling.PROBE_BATCH + 3)]
    )
    batches = []
    scheduling.dispatch_due_probes(enqueue=batches.append)
    assert [len(b) for b in batches] == [scheduling.PROBE_BATCH, 3]


def test_a_new_open_relay_is_an_alert(lab_world, acme):
    AlertChannel.objects.create(organization=acme, kind=ChannelKind.EMAIL, name="ops", target="o@x")
    domain = Domain.objects.create(organization=acme, name="good.test")
    scheduling.run_probes([domain.pk])
    # The domain's MX now points at the open relay.
    Domain.objects.filter(pk=domain.pk).update(name="relay.test")
    (run,) = scheduling.run_probes([domain.pk])
    appeared = DomainEvent.objects.filter(run=run, kind=EventKind.FINDING_APPEARED)
    relay = appeared.get(data__finding="smtp.open_relay")
    assert relay.severity == "critical" and relay.alerted
    assert relay.deliveries.count() == 1


def test_a_name_two_teams_monitor_is_probed_with_each_teams_own_hosts(lab_world, acme, globex):
    """Team settings never cross: Globex's configured mail access hosts are not probed for, nor
    shown on, Acme's domain of the same name (and each team's DKIM selectors stay its own)."""
    ours = Domain.objects.create(organization=acme, name="nosrv.test")
    theirs = Domain.objects.create(
        organization=globex, name="nosrv.test", mail_access_hosts=["mx-good.probes.test"]
    )
    runs = {run.domain_id: run for run in scheduling.run_probes([ours.pk, theirs.pk])}
    assert runs[ours.pk].categories["submission"]["applicable"] is False
    assert runs[ours.pk].categories["submission"]["servers"] == []
    hosts = {row["host"] for row in runs[theirs.pk].categories["submission"]["servers"]}
    assert hosts == {"mx-good.probes.test"}
