"""Stored server probes: the retention beat task deletes those no domain's latest run lists any
more (after a grace period), keeps the ones in use however old; the admin shows them
read-only. The probes are real ones, of the mail lab, stored by a scheduled probe run."""

from datetime import timedelta

from django.utils import timezone

from domains import scheduling, tasks
from domains.models import Domain, ServerProbe
from domains.retention import PROBE_GRACE, prune_server_probes
from tests.conftest import client_for, make_user
from tests.domains.test_probe_engine import https, knot, trust  # noqa: F401  (fixtures)
from tests.domains.test_probe_scheduling import lab_world  # noqa: F401  (fixture)


def age_every_probe(days: int) -> None:
    ServerProbe.objects.update(probed_at=timezone.now() - timedelta(days=days))


def test_probes_no_domain_uses_are_pruned(lab_world, acme):  # noqa: F811
    good = Domain.objects.create(organization=acme, name="good.test")
    relay = Domain.objects.create(organization=acme, name="relay.test")
    scheduling.run_probes([good.pk, relay.pk])
    used = set(ServerProbe.objects.values_list("key", flat=True))
    assert len(used) == 8  # mx-good 25/465/587, mail.probes.test x4, mx-relay 25
    assert any(key.startswith("127.0.30.5|25|") for key in used)

    relay.delete()
    # Young unused rows stay (a probe run stores its probes before it saves its run).
    assert prune_server_probes() == 0
    age_every_probe(PROBE_GRACE.days + 1)
    assert tasks.prune_run_details() == {"runs": 0, "server_probes": 1}  # the beat task
    left = set(ServerProbe.objects.values_list("key", flat=True))
    assert left == {key for key in used if not key.startswith("127.0.30.5|")}

    # Still used by good.test's latest run, however old: kept.
    assert prune_server_probes(now=timezone.now() + timedelta(days=365)) == 0
    good.delete()
    assert prune_server_probes() == 7 and not ServerProbe.objects.exists()


def test_admin_shows_server_probes_read_only(lab_world, acme):  # noqa: F811
    domain = Domain.objects.create(organization=acme, name="relay.test")
    scheduling.run_probes([domain.pk])
    probe = ServerProbe.objects.get()
    client = client_for(make_user("root", is_staff=True, is_superuser=True))
    listing = client.get("/admin/domains/serverprobe/")
    assert listing.status_code == 200 and "mx-relay.probes.test" in listing.content.decode()
    detail = client.get(f"/admin/domains/serverprobe/{probe.pk}/change/")
    assert detail.status_code == 200 and "127.0.30.5" in detail.content.decode()
    assert client.get("/admin/domains/serverprobe/add/").status_code == 403
    assert client.post(f"/admin/domains/serverprobe/{probe.pk}/delete/").status_code == 403
    assert client.post(
        f"/admin/domains/serverprobe/{probe.pk}/change/", {"host": "x"}
    ).status_code in (403, 200)
    assert ServerProbe.objects.get().host == "mx-relay.probes.test"
