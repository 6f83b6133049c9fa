"""The scale harness, reduced (issue 17): 1,000 domains due at once on two check workers,
separate processes on PostgreSQL and a private Redis, with one fault of each kind while they
run (a worker SIGKILLed, a pool process SIGKILLed, Redis restarted, every database connection
dropped, DNS paused), report ingestion, a reader of the pages and a second beat. Nothing lost,
nothing doubled, nothing stuck, no alert sent twice, every report once.

It uses the machine's PostgreSQL directly (a database of its own), also when the rest of the
suite runs on SQLite: without PostgreSQL it fails, saying so. The full run, with figures, is
`python -m bench.scale` (docs/scaling.md)."""

import pytest

from bench.scale.cluster import PostgresMissing, admin_connection
from bench.scale.run import Harness, Options


def test_a_thousand_domains_due_at_once_survive_every_fault(tmp_path):
    try:
        admin_connection().close()
    except PostgresMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    options = Options(
        domains=1000,
        check_workers=2,
        concurrency=2,
        mailboxes=4,
        reports=10,
        records=5,
        ingest_workers=2,
        slow_delay=0.5,
        dns_pause=10.0,  # the harness's is 30 s; the suite's budget is 3 minutes
        fault_every=6.0,
        timeout=240.0,
    )
    harness = Harness(tmp_path, options, log=lambda *a: None)
    try:
        harness.start()
        result = harness.fault_pass()
    finally:
        harness.stop()
    faults = [event["fault"] for event in result.events]
    assert faults == [
        "SIGKILL a check worker",
        "SIGKILL a pool process",
        "restart Redis",
        "drop PostgreSQL connections",
        "pause DNS",
        "a second beat",
    ]
    assert all("no pool process" not in event["what"] for event in result.events), result.events
    tally = result.tally
    assert (tally.domains, tally.checked, tally.lost, tally.doubled) == (1000, 1000, 0, 0), tally
    assert not any(result.stuck.values()), result.stuck
    assert not any(result.queues.values()), result.queues
    assert result.alerts["events_alerted"] > 0
    assert result.alerts["sent_twice"] == 0
    reports = result.reports
    assert reports["reports"] == reports["distinct"] == reports["expected"] == 40, reports
    assert reports["left_in_inbox"] == 0
    assert result.beats == {"seen": 2, "staff_banner": True}
    assert result.restarts.get("checks1") == 1  # the killed worker, started again
    # A request in flight as PostgreSQL drops its connection may fail; the next one reconnects.
    assert result.web["pages"] > 0 and result.web["failures"] <= 5, result.web
