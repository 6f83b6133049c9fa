"""A team's objects of every kind the API serves, made in code (for Acme, and the same for
Globex, the other team): what the role matrix and the isolation walk request."""

from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from domains.models import AlertChannel, ChannelKind, CheckRun, Finding, ManualCheck, RunStatus
from reports import uploads
from reports.ingest import ingest_input
from reports.models import AggregateReport, FailureReport, TlsReport, Upload

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
AGGREGATE = FIXTURES / "aggregate" / "mox__google.eml"
TLS = FIXTURES / "smtp_tls" / "parsedmarc__rfc8460.json"
FAILURE = FIXTURES / "forensic" / "parsedmarc__dmarc_ruf_report_linkedin.eml"


@dataclass
class World:
    domain: object
    run: CheckRun
    check: ManualCheck
    aggregate: AggregateReport
    tls: TlsReport
    failure: FailureReport
    upload: Upload
    channel: AlertChannel

    def ids(self) -> dict[str, int]:
        """The id of each route's object, by the route's name (see the router)."""
        return {
            "domain": self.domain.pk,
            "run": self.run.pk,
            "check": self.check.pk,
            "aggregate-report": self.aggregate.pk,
            "tls-report": self.tls.pk,
            "failure-report": self.failure.pk,
            "upload": self.upload.pk,
            "channel": self.channel.pk,
        }


def make_run(domain, grade="B") -> CheckRun:
    now = timezone.now()
    run = CheckRun.objects.create(
        domain=domain,
        name=domain.name,
        started_at=now,
        finished_at=now,
        status=RunStatus.COMPLETE,
        score=80,
        grade=grade,
        categories={"smtp": {"servers": [{"host": f"mx.{domain.name}", "port": 25}]}},
    )
    Finding.objects.create(
        run=run,
        kind="spf.missing",
        category="spf",
        severity="high",
        title="No SPF record",
        detail="None found.",
        remediation="Publish one.",
    )
    type(domain).objects.filter(pk=domain.pk).update(last_run=run, grade=grade, score=80)
    return run


def receive(path: Path, team, model):
    [outcome] = ingest_input(str(path), path.name, via="upload", organization=team)
    return model.objects.get(pk=outcome.report_pk)


def world_of(team, domain, user) -> World:
    upload = uploads.create(team, user, [], [("big.xml", "Larger than 1 MB: not read.")])
    return World(
        domain=domain,
        run=make_run(domain),
        check=ManualCheck.objects.create(domain=domain, user=user, requested_at=timezone.now()),
        aggregate=receive(AGGREGATE, team, AggregateReport),
        tls=receive(TLS, team, TlsReport),
        failure=receive(FAILURE, team, FailureReport),
        upload=upload,
        channel=AlertChannel.objects.create(
            organization=team, kind=ChannelKind.EMAIL, name="ops", target="ops@example.test"
        ),
    )
