"""A probe run of a batch leaves no database connection open behind it: the Prober's worker
threads (and the engine's) never hold one (domains/probing.py reads and writes the stored probes
in the caller's thread). Counted by the connections Django opens in other threads that are still
open, and on PostgreSQL by the server's own count (pg_stat_activity)."""

import threading

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from domains import scheduling
from domains.models import Domain, ServerProbe
from tests.domains.test_probe_engine import https, knot, trust  # noqa: F401  (fixtures)
from tests.domains.test_probe_scheduling import lab_world  # noqa: F401  (fixture)

DOMAINS = ["good.test", "relay.test", "plain.test", "banner.test", "custom.test", "notls.test"]


def server_connections() -> int | None:
    """Connections to this database the server counts (PostgreSQL), else None."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_probe_batch_leaves_no_connection_open(lab_world, acme):  # noqa: F811
    domains = [Domain.objects.create(organization=acme, name=name).pk for name in DOMAINS]
    opened = []  # (thread, connection wrapper) of every connection opened during the run

    def note(sender, connection, **kwargs):
        opened.append((threading.current_thread(), connection))

    before = server_connections()
    connection_created.connect(note)
    try:
        runs = scheduling.run_probes(domains)
    finally:
        connection_created.disconnect(note)
    assert len(runs) == len(DOMAINS) and ServerProbe.objects.count() > 10
    elsewhere = [(t.name, c) for t, c in opened if t is not threading.main_thread()]
    assert [name for name, c in elsewhere if c.connection is not None] == []
    if before is not None:
        assert server_connections() <= before
