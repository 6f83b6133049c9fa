"""Give the reports stored before they belonged to a team to the teams that saw them then.

Until now a team saw every report about a domain name it monitors. To keep each team's view
unchanged, a report goes to every team that monitors its domain (a TLS report: any of its
policies' domains), copied once per team beyond the first, with its records, policies and
input; a report nobody monitors stays unclaimed. An input goes to the first owner of its
first report and is copied for each other owner of its reports. Rollups and selectors are
copied to each team monitoring their domain; those of domains nobody monitors are dropped
(they are made again from the records when staff assign the reports). Inputs without any
report (refused ones) go to the team of the mailbox that fetched them, else stay unclaimed.
See "Release notes" in the README.
"""

from collections import defaultdict

from django.db import migrations

RECORD_COLUMNS = (
    "source_ip, count, disposition, dkim, spf, header_from, envelope_from, envelope_to, "
    "reasons, dkim_results, spf_results"
)


def _teams_by_name(apps) -> dict[str, list[int]]:
    Domain = apps.get_model("domains", "Domain")
    teams: dict[str, list[int]] = defaultdict(list)
    for name, team in Domain.objects.order_by("organization_id").values_list(
        "name", "organization_id"
    ):
        teams[name].append(team)
    return teams


def _copy(row, **changes):
    """A new row like `row`, with `changes` (auto_now_add fields keep their value: they are
    set again on insert, so they are put back afterwards)."""
    model = type(row)
    values = {
        f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields if not f.primary_key
    }
    values.update(changes)
    new = model.objects.create(**values)
    if "received_at" in values:
        model.objects.filter(pk=new.pk).update(received_at=values["received_at"])
    return new


class Owners:
    """Who gets a report, and each owner's copy of an input."""

    def __init__(self, apps, schema_editor):
        self.apps = apps
        self.connection = schema_editor.connection
        self.teams = _teams_by_name(apps)
        self.inputs: dict[tuple[int, int | None], int] = {}  # (raw pk, team) -> raw pk
        self.settled: set[int] = set()  # inputs whose first owner is known

    def of(self, names) -> list[int]:
        found: list[int] = []
        for name in names:
            found += [t for t in self.teams.get(name, []) if t not in found]
        return sorted(found)

    def input_for(self, raw_pk: int, team: int | None) -> int:
        """The pk of `team`'s copy of input `raw_pk`, made on first need; the input itself
        goes to its first owner."""
        key = (raw_pk, team)
        if key in self.inputs:
            return self.inputs[key]
        RawInput = self.apps.get_model("reports", "RawInput")
        if raw_pk not in self.settled:
            RawInput.objects.filter(pk=raw_pk).update(organization_id=team)
            self.settled.add(raw_pk)
            self.inputs[key] = raw_pk
        else:
            self.inputs[key] = _copy(RawInput.objects.get(pk=raw_pk), organization_id=team).pk
        return self.inputs[key]

    def copy_records(self, old: int, new: int) -> None:
        table = self.apps.get_model("reports", "AggregateRecord")._meta.db_table
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (report_id, {RECORD_COLUMNS}) "  # noqa: S608
                f"SELECT %s, {RECORD_COLUMNS} FROM {table} WHERE report_id = %s ORDER BY id",
                [new, old],
            )


def _give(owners: Owners, report, teams: list[int], after_copy=None) -> None:
    """The report to the first of `teams` (or unclaimed when there is none), a copy to each
    other; `after_copy(old, new)` copies what hangs off it."""
    teams = teams or [None]
    first, others = teams[0], teams[1:]
    raw_pk = report.raw_id
    for team in others:
        copy = _copy(report, organization_id=team, raw_id=owners.input_for(raw_pk, team))
        if after_copy:
            after_copy(report, copy)
    report.organization_id = first
    report.raw_id = owners.input_for(raw_pk, first)
    report.save(update_fields=["organization", "raw"])


def _existing(model, chunk: int = 500):
    """The reports there were before this migration began copying (the copies are not to be
    given again), a chunk at a time."""
    pks = list(model.objects.order_by("raw_id", "pk").values_list("pk", flat=True))
    for start in range(0, len(pks), chunk):
        rows = model.objects.in_bulk(pks[start : start + chunk])
        yield from (rows[pk] for pk in pks[start : start + chunk])


def assign_reports(apps, schema_editor):
    owners = Owners(apps, schema_editor)
    models = {m: apps.get_model("reports", m) for m in ("AggregateReport", "TlsReport")}
    models["FailureReport"] = apps.get_model("reports", "FailureReport")
    TlsPolicy = apps.get_model("reports", "TlsPolicy")

    for report in _existing(models["AggregateReport"]):
        _give(
            owners,
            report,
            owners.of([report.domain]),
            lambda old, new: owners.copy_records(old.pk, new.pk),
        )

    def copy_policies(old, new):
        for policy in TlsPolicy.objects.filter(report_id=old.pk).order_by("pk"):
            _copy(policy, report_id=new.pk)

    for report in _existing(models["TlsReport"]):
        names = [report.domain]
        names += TlsPolicy.objects.filter(report_id=report.pk).values_list(
            "policy_domain", flat=True
        )
        _give(owners, report, owners.of(names), copy_policies)

    for report in _existing(models["FailureReport"]):
        _give(owners, report, owners.of([report.domain]))

    _assign_reportless_inputs(apps, owners)
    domains = apps.get_model("domains", "Domain")._meta.db_table
    for name in ("DailyRollup", "ReportedSelector"):
        _copy_per_team(apps.get_model("reports", name), domains, schema_editor.connection)


def _assign_reportless_inputs(apps, owners: Owners) -> None:
    """Inputs no report points to: the team whose mailbox fetched them, if one did."""
    ProcessedMessage = apps.get_model("reports", "ProcessedMessage")
    settled = {raw for raw, _ in owners.inputs}
    fetched = ProcessedMessage.objects.filter(raw__isnull=False).exclude(raw_id__in=settled)
    for raw_pk, team in fetched.values_list("raw_id", "mailbox__organization_id").distinct():
        if (raw_pk, team) not in owners.inputs:
            owners.input_for(raw_pk, team)
    # The others stay unclaimed, as they were.


def _copy_per_team(model, domains: str, connection) -> None:
    """Each row to every team monitoring its domain; rows of domains nobody monitors are
    dropped. In SQL: there may be millions."""
    table = model._meta.db_table
    columns = [
        f.column
        for f in model._meta.concrete_fields
        if not f.primary_key and f.name != "organization"
    ]
    names = ", ".join(columns)
    chosen = ", ".join(f"t.{c}" for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, {names}) "  # noqa: S608
            f"SELECT DISTINCT d.organization_id, {chosen} FROM {table} t "
            f"JOIN {domains} d ON d.name = t.domain WHERE t.organization_id IS NULL"
        )
        cursor.execute(f"DELETE FROM {table} WHERE organization_id IS NULL")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [
        ("domains", "0004_run_details_pruned"),
        ("reports", "0005_reports_belong_to_teams"),
    ]

    operations = [migrations.RunPython(assign_reports, migrations.RunPython.noop)]
