"""/metrics for Prometheus: read from the database (and the broker) at each scrape, so every
web process answers the same figures and a restart loses none. Counters count what is stored
(check runs keep their summary for good; see domains/retention.py).

Open to a bearer token (MAILSEC_METRICS_TOKEN) or to the addresses of MAILSEC_METRICS_ALLOW;
with neither set the page does not exist (404)."""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from kombu.exceptions import ChannelError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from domains.models import CheckRun, Domain, ServerProbe
from reports.models import AggregateReport, FailureReport, MailboxPass, RawInput, TlsReport

logger = logging.getLogger(__name__)

# Seconds: a check asks DNS (and, every probe interval, the mail servers) within its 240 s
# time limit.
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 240)


def _counts(queryset, field: str) -> list[tuple[str, int]]:
    rows = queryset.values(field).annotate(n=Count("pk")).order_by(field)
    return [(str(row[field] or ""), row["n"]) for row in rows]


class MailsecCollector:
    def collect(self):
        yield from self.domains()
        yield from self.check_runs()
        yield self.probes()
        yield from self.reports()
        yield self.mailbox_passes()
        yield self.queue_depths()

    def domains(self):
        grades = GaugeMetricFamily(
            "mailsec_domains", "Monitored domains by their last known grade.", labels=["grade"]
        )
        for grade, n in _counts(Domain.objects.all(), "grade"):
            grades.add_metric([grade or "none"], n)
        yield grades
        now = timezone.now()
        lag = GaugeMetricFamily(
            "mailsec_oldest_due_seconds",
            "How long the longest-waiting due domain has waited (scheduling lag).",
            labels=["schedule"],
        )
        for schedule, field in (("check", "next_check_at"), ("probe", "next_probe_at")):
            oldest = Domain.objects.filter(**{f"{field}__lte": now}).aggregate(at=Min(field))["at"]
            lag.add_metric([schedule], (now - oldest).total_seconds() if oldest else 0.0)
        yield lag

    def check_runs(self):
        runs = CounterMetricFamily(
            "mailsec_check_runs",
            "Check runs stored, by outcome ('error': could not test).",
            labels=["status"],
        )
        for status, n in _counts(CheckRun.objects.all(), "status"):
            runs.add_metric([status], n)
        yield runs
        took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        buckets = {
            f"le{i}": Count("pk", filter=Q(took__lte=_delta(bound)))
            for i, bound in enumerate(DURATION_BUCKETS)
        }
        row = CheckRun.objects.annotate(took=took).aggregate(
            total=Count("pk"), seconds=Sum("took"), **buckets
        )
        histogram = HistogramMetricFamily(
            "mailsec_check_duration_seconds", "How long check runs took."
        )
        histogram.add_metric(
            [],
            [(str(float(bound)), row[f"le{i}"]) for i, bound in enumerate(DURATION_BUCKETS)]
            + [("+Inf", row["total"])],
            sum_value=row["seconds"].total_seconds() if row["seconds"] else 0.0,
        )
        yield histogram

    def probes(self):
        probes = GaugeMetricFamily(
            "mailsec_server_probes",
            "Mail servers by how their latest probe reached them (anything but 'ok' failed).",
            labels=["reach"],
        )
        for reach, n in _counts(ServerProbe.objects.all(), "result__reach"):
            probes.add_metric([reach or "unknown"], n)
        return probes

    def reports(self):
        stored = CounterMetricFamily(
            "mailsec_reports_ingested", "Reports stored, by kind.", labels=["kind"]
        )
        for kind, model in (
            ("aggregate", AggregateReport),
            ("tls", TlsReport),
            ("failure", FailureReport),
        ):
            stored.add_metric([kind], model.objects.count())
        yield stored
        inputs = CounterMetricFamily(
            "mailsec_report_inputs",
            "Inputs received (files, messages), by how they went ('refused', 'partial').",
            labels=["source", "status"],
        )
        rows = RawInput.objects.values("source", "status").annotate(n=Count("pk"))
        for row in rows.order_by("source", "status"):
            inputs.add_metric([row["source"], row["status"]], row["n"])
        yield inputs

    def mailbox_passes(self):
        passes = CounterMetricFamily(
            "mailsec_mailbox_passes", "Report mailbox passes, by outcome.", labels=["state"]
        )
        for state, n in _counts(MailboxPass.objects.all(), "state"):
            passes.add_metric([state], n)
        return passes

    def queue_depths(self):
        depths = GaugeMetricFamily(
            "mailsec_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        from mailsec.celery import app

        try:
            with app.connection_for_read() as conn:
                channel = conn.default_channel
                for queue in app.conf.task_queues or []:
                    depths.add_metric([queue.name], _waiting(channel, queue.name))
        except Exception as exc:
            logger.warning("Could not read the queue depths: %s", exc)
        return depths


def _waiting(channel, name: str) -> int:
    try:
        _, waiting, _ = channel.queue_declare(name, passive=True)
    except ChannelError:  # Redis keeps no key for an empty queue
        return 0
    return waiting


def _delta(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=seconds)


def allowed(request) -> bool:
    token = settings.MAILSEC_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.MAILSEC_METRICS_ALLOW)


@login_not_required
@require_GET
def metrics(request):
    if not settings.MAILSEC_METRICS_TOKEN and not settings.MAILSEC_METRICS_ALLOW:
        raise Http404("Set MAILSEC_METRICS_TOKEN or MAILSEC_METRICS_ALLOW to open /metrics.")
    if not allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MailsecCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
