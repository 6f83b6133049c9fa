"""Staff give unclaimed reports (imported without a team) to the team that received them.

The reports move (no parsing again): each goes to the team with a copy of its input, and
what the team's pages read from is made then (rollups, DKIM selectors), as ingestion does for
a team's own reports. A report the team already holds is a duplicate: the unclaimed copy goes.
"""

from __future__ import annotations

from collections import Counter

from django.db import transaction

from reports import ingest, models
from reports.senders.enrich import enrich_later

# Records read at a time when collecting a report's DKIM selectors.
SELECTOR_CHUNK = 5000


def assign_domain(domain: str, organization) -> Counter:
    """Give every unclaimed report about `domain` to `organization`; count what happened
    ("assigned", "duplicate")."""
    done: Counter = Counter()
    inputs: set[int] = set()
    with transaction.atomic():
        for model in (models.AggregateReport, models.TlsReport, models.FailureReport):
            unclaimed = model.objects.filter(organization__isnull=True, domain=domain)
            for report in unclaimed.select_related("raw").select_for_update(of=("self",)):
                inputs.add(report.raw_id)
                done[_assign(report, organization)] += 1
        _drop_emptied(inputs)
    return done


def _assign(report, organization) -> str:
    # An old report whose input retention deleted has none to copy.
    raw = _team_input(report.raw, organization) if report.raw_id else None
    if type(report).objects.filter(**_identity(report, raw, organization)).exists():
        report.delete()
        return "duplicate"
    report.organization, report.raw = organization, raw
    report.save(update_fields=["organization", "raw"])
    if isinstance(report, models.AggregateReport):
        ingest.add_to_rollups(report)
        ingest.remember_selectors(organization.pk, _selectors(report), report.end.date())
        enrich_later(report.pk)
    return "assigned"


def _identity(report, raw, organization) -> dict:
    """How ingest recognises the same report within a team."""
    same = {"organization": organization, "org_name": report.org_name}
    if isinstance(report, models.AggregateReport):
        return same | {
            "report_id": report.report_id,
            "domain": report.domain,
            "begin": report.begin,
            "end": report.end,
        }
    if isinstance(report, models.FailureReport) and not report.report_id:
        return {"organization": organization, "raw": raw, "report_id": ""}
    return same | {"report_id": report.report_id}


def _team_input(raw: models.RawInput, organization) -> models.RawInput:
    """The team's copy of an unclaimed input (made if it has none)."""
    existing = models.RawInput.objects.filter(organization=organization, sha256=raw.sha256)
    found = existing.first()
    if found is not None:
        return found
    copy = models.RawInput.objects.create(
        organization=organization,
        **{
            f.attname: getattr(raw, f.attname)
            for f in models.RawInput._meta.concrete_fields
            if f.name not in ("id", "organization", "received_at")
        },
    )
    models.RawInput.objects.filter(pk=copy.pk).update(received_at=raw.received_at)
    return copy


def _selectors(report: models.AggregateReport) -> dict:
    """The (domain, selector) pairs the report's records name, as ingest collects them."""
    found: dict[tuple[str, str], None] = {}
    results = report.records.order_by("pk").values_list("dkim_results", flat=True)
    for dkim in results.iterator(chunk_size=SELECTOR_CHUNK):
        for result in dkim:
            if result.get("selector") and result.get("domain"):
                found[(result["domain"], result["selector"])] = None
        if len(found) >= ingest.MAX_SELECTORS_PER_REPORT:
            break
    return found


def _drop_emptied(inputs: set[int]) -> None:
    """Unclaimed inputs whose reports have all gone to teams (their copies stay); an input
    also holding refused parts stays, for staff to look at."""
    models.RawInput.objects.filter(
        pk__in=inputs,
        aggregate_reports__isnull=True,
        tls_reports__isnull=True,
        failure_reports__isnull=True,
        status__in=[models.InputStatus.IMPORTED, models.InputStatus.DUPLICATE],
    ).delete()
