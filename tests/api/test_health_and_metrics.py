"""/healthz (the database), /readyz (also the broker, the tests' real Redis, and beat's last
dispatch), and /metrics behind its token or allow-list."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from domains.models import CheckRun, Domain, RunStatus, ServerProbe
from mailsec.celery import app
from mailsec.models import BeatHeartbeat
from reports.models import Mailbox, MailboxPass
from tests.api.world import AGGREGATE, receive


def test_healthz_is_the_database(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": {"status": "ok"}}}


def test_readyz_checks_the_broker_and_beat(db, celery_queue):
    BeatHeartbeat.objects.create(identity="h:1:a")
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "broker": "ok",
        "beat": "ok",
    }


def test_readyz_fails_when_beat_is_silent(db, celery_queue):
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"] == {
        "status": "fail",
        "error": "beat has never dispatched a task",
    }
    BeatHeartbeat.objects.create(identity="h:1:a", seen_at=timezone.now() - timedelta(minutes=4))
    body = Client().get("/readyz").json()
    assert body["status"] == "fail" and body["checks"]["beat"]["age"] >= 240
    assert body["checks"]["broker"]["status"] == "ok"


def test_readyz_fails_when_the_broker_is_down(db, celery_queue, unused_port):
    BeatHeartbeat.objects.create(identity="h:1:a")
    before = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{unused_port}/0"
    try:
        response = Client().get("/readyz")
    finally:
        app.conf.broker_url = before
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["status"] == "fail" and checks["beat"]["status"] == "ok"


@pytest.fixture
def unused_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- metrics -------------------------------------------------------------------------------


def test_metrics_do_not_exist_unless_configured(db):
    assert Client().get("/metrics").status_code == 404


def test_metrics_need_the_token_or_an_allowed_address(db, settings):
    settings.MAILSEC_METRICS_TOKEN = "s3cret-metrics"
    assert Client().get("/metrics").status_code == 403
    wrong = Client(headers={"Authorization": "Bearer nope"})
    assert wrong.get("/metrics").status_code == 403
    right = Client(headers={"Authorization": "Bearer s3cret-metrics"})
    assert right.get("/metrics").status_code == 200
    settings.MAILSEC_METRICS_TOKEN = None
    import ipaddress

    settings.MAILSEC_METRICS_ALLOW = [ipaddress.ip_network("10.0.0.0/8")]
    assert Client().get("/metrics").status_code == 403  # the test client is 127.0.0.1
    settings.MAILSEC_METRICS_ALLOW = [ipaddress.ip_network("127.0.0.1/32")]
    assert Client().get("/metrics").status_code == 200


def metric_lines(settings) -> dict[str, float]:
    settings.MAILSEC_METRICS_TOKEN = "t"
    response = Client(headers={"Authorization": "Bearer t"}).get("/metrics")
    assert response.status_code == 200
    values = {}
    for line in response.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_say_what_the_database_and_broker_hold(acme, settings, celery_queue):
    now = timezone.now()
    for name, grade in (("a.example", "A"), ("b.example", "A"), ("c.example", "")):
        Domain.objects.create(organization=acme, name=name, grade=grade)
    Domain.objects.filter(name="c.example").update(next_check_at=now - timedelta(minutes=10))
    domain = Domain.objects.get(name="a.example")
    for seconds, status in ((1.5, RunStatus.COMPLETE), (45, RunStatus.ERROR)):
        CheckRun.objects.create(
            domain=domain,
            name=domain.name,
            started_at=now - timedelta(seconds=seconds),
            finished_at=now,
            status=status,
        )
    for reach in ("ok", "timeout", "timeout"):
        ServerProbe.objects.create(
            key=f"{reach}{ServerProbe.objects.count()}",
            host="mx",
            address="127.0.0.1",
            port=25,
            service="smtp",
            tls_mode="starttls",
            result={"reach": reach},
            probed_at=now,
        )
    from reports.models import AggregateReport

    receive(AGGREGATE, acme, AggregateReport)
    mailbox = Mailbox.objects.create(organization=acme, name="m", host="h", username="u")
    MailboxPass.objects.create(mailbox=mailbox, state=MailboxPass.State.FAILED)
    waiting = celery_queue + "checks"
    with app.connection_for_write() as conn:
        conn.default_channel.client.lpush(waiting, "x", "y")
    try:
        values = metric_lines(settings)
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete(waiting)
    assert values['mailsec_domains{grade="A"}'] == 2
    assert values['mailsec_domains{grade="none"}'] == 1
    assert values['mailsec_check_runs_total{status="complete"}'] == 1
    assert values['mailsec_check_runs_total{status="error"}'] == 1
    assert values['mailsec_check_duration_seconds_bucket{le="2.0"}'] == 1
    assert values['mailsec_check_duration_seconds_bucket{le="60.0"}'] == 2
    assert values["mailsec_check_duration_seconds_count"] == 2
    assert values["mailsec_check_duration_seconds_sum"] == pytest.approx(46.5)
    assert values['mailsec_server_probes{reach="timeout"}'] == 2
    assert values['mailsec_reports_ingested_total{kind="aggregate"}'] == 1
    assert values['mailsec_report_inputs_total{source="upload",status="imported"}'] == 1
    assert values['mailsec_mailbox_passes_total{state="failed"}'] == 1
    assert values[f'mailsec_queue_depth{{queue="{waiting}"}}'] == 2
    assert 590 <= values['mailsec_oldest_due_seconds{schedule="check"}'] <= 700


def test_the_grafana_dashboard_plots_only_served_metrics(acme, settings, celery_queue):
    import json
    import re
    from pathlib import Path

    dashboard = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
    panels = json.loads(dashboard.read_text())["panels"]
    plotted = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\bmailsec_[a-z_]+", target["expr"])
    }
    settings.MAILSEC_METRICS_TOKEN = "t"
    text = Client(headers={"Authorization": "Bearer t"}).get("/metrics").content.decode()
    suffixes = {
        "counter": ["", "_total"],
        "gauge": [""],
        "histogram": ["_bucket", "_sum", "_count"],
    }
    served = {
        family + suffix
        for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE)
        for suffix in suffixes[kind]
    }
    assert plotted <= served, plotted - served
    # Every family the issue asks for has a panel.
    assert len(plotted) >= 9
