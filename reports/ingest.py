"""Store what the parsers produce: one input in, one outcome per report found.

The input itself is kept first (RawInput: original bytes, compressed), so nothing
is lost whatever happens next; then each report is stored in its own transaction,
all of it or nothing, and a report seen before is counted as a duplicate.

Everything belongs to the team that received the input (`organization`, None for unclaimed):
the input, its reports, and the rollups and selectors made from them; a report is a duplicate
only of one the same team holds.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import islice

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from reports import models, spread
from reports.parsing import parse, types, unpack
from reports.rows import record_rows
from reports.senders.enrich import enrich_later

# Records are inserted this many at a time: big enough to amortise the round trip,
# small enough that a million-record report never sits in memory.
BATCH_SIZE = 5000
# A report names at most this many (domain, selector) pairs for the DKIM check.
MAX_SELECTORS_PER_REPORT = 200
# Inputs stored bigger than this are written on their own (see _write_content).
INLINE_CONTENT = 1 << 20
# The reason of an input kept but not parsed yet (or whose parse was killed: the reaper
# parses those again, mailsec/reaper.py).
NOT_PARSED = "not parsed yet"
REPARSING = "not parsed yet: its import was interrupted, it is being parsed again"
INTERRUPTED = "its import was interrupted twice before it was parsed: import it again"
UNPARSED = (NOT_PARSED, REPARSING, INTERRUPTED)
KIND_OF_PAYLOAD = {"xml": "aggregate", "json": "tls", "arf": "failure"}


@dataclass
class Outcome:
    """The result for one report (or one refused payload) of an input.

    Field names and values are those of `import_reports --json`.
    """

    file: str
    status: str  # "imported" | "duplicate" | "invalid"
    kind: str | None = None  # "aggregate" | "tls" | "failure"
    org_name: str | None = None
    report_id: str | None = None
    domain: str | None = None
    records: int | None = None  # aggregate: records; tls: policies
    messages: int | None = None  # aggregate: sum of counts; tls: total sessions
    error: str | None = None
    part: str = ""  # which payload of the input (not in the JSON line)
    report_pk: int | None = None  # the stored report, when there is one

    def as_json(self) -> dict:
        data = asdict(self)
        del data["part"], data["report_pk"]
        return data


def ingest_input(
    source, name: str, *, via: str, organization=None, user=None, limit: int | None = None
):
    """Keep the input for the team that received it (None: unclaimed), store every report in
    it; return one Outcome per report found."""
    raw = keep_raw(source, name, via=via, organization=organization, user=user)
    return ingest_kept(raw, name, source, limit=limit)


def ingest_kept(raw: models.RawInput, name: str, source=None, *, limit: int | None = None):
    """Store every report of an input already kept (`source`: its bytes or path, by default
    the stored copy). An input refused before is not parsed again: refusing it cost its budget
    once (reports/parsing/unpack.py), and parsing the same bytes again would refuse them again."""
    if raw.status == models.InputStatus.REFUSED and raw.reason not in UNPARSED:
        return [Outcome(name, "invalid", error=f"refused before, not parsed again: {raw.reason}")]
    limit = limit or settings.MAILSEC_REPORT_MAX_BYTES
    outcomes = []
    for item in unpack.payloads(raw.original() if source is None else source, name, limit=limit):
        if isinstance(item, types.Refused):
            outcomes.append(Outcome(name, "invalid", error=item.reason, part=item.name))
            continue
        outcomes.append(store_payload(item, raw, name))
    if not outcomes:
        outcomes.append(Outcome(name, "invalid", error="no report found in this input"))
    _settle_raw(raw, outcomes)
    return outcomes


def store_payload(payload: types.Payload, raw: models.RawInput, name: str) -> Outcome:
    """Store one report of `raw`, for the team `raw` belongs to."""
    kind = KIND_OF_PAYLOAD.get(payload.kind)
    try:
        report = parse(payload)
        store = {"aggregate": store_aggregate, "tls": store_tls, "failure": store_failure}
        outcome = store[report.kind](report, raw)
    except types.Refused as refused:
        return Outcome(name, "invalid", kind=kind, error=refused.reason, part=payload.name)
    outcome.file, outcome.part = name, payload.name
    return outcome


def keep_raw(source, name: str, *, via: str, organization=None, user=None) -> models.RawInput:
    sha, size, encoding, content = _compressed_copy(source)
    raw, created = models.RawInput.objects.get_or_create(
        sha256=sha,
        organization=organization,
        defaults={
            "name": name[:500],
            "size": size,
            "encoding": encoding,
            "content": content if len(content) < INLINE_CONTENT else b"",
            "source": via,
            "status": models.InputStatus.REFUSED,
            "reason": NOT_PARSED,
            "uploaded_by": user,
        },
    )
    if created and len(content) >= INLINE_CONTENT:
        _write_content(raw.pk, content)
    return raw


def keep_refused(source: bytes, name: str, reason: str, *, via: str, organization=None):
    """Keep what there is of an input refused before it could be read (the header of a mail
    message too big to fetch), with the reason it was refused."""
    raw = keep_raw(source, name, via=via, organization=organization)
    if raw.reason in UNPARSED:  # new: never parsed
        raw.status, raw.reason = models.InputStatus.REFUSED, reason
        raw.save(update_fields=["status", "reason"])
    return raw


def _write_content(pk: int, content: bytes) -> None:
    """The stored bytes of an input, sent as a binary parameter where the driver would
    otherwise quote them into the SQL text (psycopg's client-side binding doubles a bytea as
    hex, twice over: a million-record report's copy would cost 100 MB more)."""
    table = models.RawInput._meta.db_table
    if connection.vendor == "postgresql":
        import psycopg

        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(f"UPDATE {table} SET content = %b WHERE id = %s", [content, pk])  # noqa: S608
    else:
        models.RawInput.objects.filter(pk=pk).update(content=content)


def _compressed_copy(source) -> tuple[str, int, str, bytes]:
    """sha256, size, encoding and stored bytes of an input, read in chunks from a path."""
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else open(source, "rb")  # noqa: SIM115
    with stream:
        head = stream.read(4)
        stream.seek(0)
        keep_as_is = unpack.is_compressed(head)
        sha, size, out = hashlib.sha256(), 0, io.BytesIO()
        gz = None if keep_as_is else gzip.GzipFile(fileobj=out, mode="wb", compresslevel=3, mtime=0)
        while chunk := stream.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
            (out if gz is None else gz).write(chunk)
        if gz is not None:
            gz.close()
    return sha.hexdigest(), size, "identity" if keep_as_is else "gzip", out.getvalue()


def _settle_raw(raw: models.RawInput, outcomes: list[Outcome]) -> None:
    statuses = {o.status for o in outcomes}
    if statuses == {"invalid"}:
        status = models.InputStatus.REFUSED
    elif "invalid" in statuses:
        status = models.InputStatus.PARTIAL
    elif statuses == {"duplicate"}:
        status = models.InputStatus.DUPLICATE
    else:
        status = models.InputStatus.IMPORTED
    if status == models.InputStatus.DUPLICATE and raw.status in (
        models.InputStatus.IMPORTED,
        models.InputStatus.PARTIAL,
    ):
        return  # the same bytes again: they were imported the first time, and stay so
    errors = [f"{o.part or o.file}: {o.error}" for o in outcomes if o.error]
    raw.status, raw.reason = status, "\n".join(errors)[:10000]
    raw.save(update_fields=["status", "reason"])


# --- aggregate -------------------------------------------------------------------------


def store_aggregate(report: types.AggregateReport, raw: models.RawInput) -> Outcome:
    meta = report.meta
    identity = {
        "organization_id": raw.organization_id,
        "org_name": meta.org_name[:255],
        "report_id": meta.report_id[:255],
        "domain": meta.domain,
        "begin": meta.begin,
        "end": meta.end,
    }

    def create():
        row = models.AggregateReport.objects.create(raw=raw, **identity, **_policy(meta))
        _store_records(row, report)
        enrich_later(row.pk)  # its senders, in the background (reports/senders/enrich.py)
        return row

    row, created = _store_once(models.AggregateReport, identity, create)
    return _aggregate_outcome(row, "imported" if created else "duplicate")


def _store_once(model, identity: dict, create) -> tuple:
    """(row, created): the report stored under `identity`, or create() run in one
    transaction to store it. Another process storing the same report between our check and
    our insert makes it a duplicate, as the unique constraint tells."""
    existing = model.objects.filter(**identity).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return create(), True
    except IntegrityError:
        existing = model.objects.filter(**identity).first()
        if existing is None:
            raise
        return existing, False


def _policy(meta: types.AggregateMeta) -> dict:
    return {
        "email": meta.email[:255],
        "extra_contact_info": meta.extra_contact_info,
        "version": meta.version[:20],
        "generator": meta.generator[:255],
        "errors": meta.errors,
        "warnings": meta.warnings,
        "adkim": meta.adkim[:10],
        "aspf": meta.aspf[:10],
        "p": meta.p[:20],
        "sp": meta.sp[:20],
        "np": meta.np[:20],
        "pct": meta.pct,
        "fo": meta.fo[:20],
        "testing": meta.testing[:10],
        "discovery_method": meta.discovery_method[:20],
    }


def _store_records(row: models.AggregateReport, report: types.AggregateReport) -> None:
    records = messages = passed = 0
    selectors: dict[tuple[str, str], None] = {}
    with RecordWriter() as writer, _no_cyclic_collection():
        for batch in batches(report.records(), BATCH_SIZE):
            rows, batch_messages, batch_passed = record_rows(
                row.pk, batch, selectors, MAX_SELECTORS_PER_REPORT
            )
            records += len(rows)
            messages += batch_messages
            passed += batch_passed
            writer.add(rows)
    row.record_count, row.message_count, row.dmarc_pass = records, messages, passed
    row.save(update_fields=["record_count", "message_count", "dmarc_pass"])
    if row.organization_id is not None:  # unclaimed: made when staff assign the report
        add_to_rollups(row)
        remember_selectors(row.organization_id, selectors, row.end.date())


@contextmanager
def _no_cyclic_collection():
    """Parsing and storing records makes no reference cycles, but a batch's thousands of
    objects are alive long enough for the cyclic garbage collector to walk them again and
    again: a fifth of the time of a large report. It is paused meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def batches(items: Iterator, size: int) -> Iterator[list]:
    items = iter(items)
    while batch := list(islice(items, size)):
        yield batch


class RecordWriter:
    """Inserts records a batch at a time, below the ORM: a million model instances would cost
    more than parsing them. PostgreSQL gets COPY, other databases executemany. Runs inside
    the caller's transaction."""

    COLUMNS = (
        "report_id", "source_ip", "count", "disposition", "dkim", "spf", "header_from",
        "envelope_from", "envelope_to", "reasons", "dkim_results", "spf_results",
    )  # fmt: skip

    def __init__(self):
        self.table = models.AggregateRecord._meta.db_table
        self.cursor = None
        self.copy_context = self.copy = None

    def __enter__(self):
        self.cursor = connection.cursor()
        columns = ", ".join(self.COLUMNS)
        if connection.vendor == "postgresql":
            raw = self.cursor.cursor  # psycopg's own cursor, under Django's wrapper
            self.copy_context = raw.copy(f"COPY {self.table} ({columns}) FROM STDIN")
            self.copy = self.copy_context.__enter__()
        marks = ", ".join(["%s"] * len(self.COLUMNS))
        self.insert = f"INSERT INTO {self.table} ({columns}) VALUES ({marks})"  # noqa: S608
        return self

    def add(self, rows: list[tuple]) -> None:
        """Insert rows in COLUMNS order (reports/rows.pyx makes them)."""
        if self.copy is None:
            self.cursor.executemany(self.insert, rows)
            return
        write = self.copy.write_row
        for row in rows:
            write(row)

    def __exit__(self, kind, error, traceback):
        try:
            if self.copy_context is not None:
                self.copy_context.__exit__(kind, error, traceback)
        finally:
            self.cursor.close()
        return False


def add_to_rollups(row: models.AggregateReport) -> None:
    """Add the report's records to its team's daily rollups (per source), monthly rollups (per
    source) and daily totals, one statement each, in the database, spread over the UTC days its
    period covers (reports/spread.py). Each is added to, never recomputed from another: two
    reports of a day stored at once each add their own."""
    days = spread.covered_days(row.begin, row.end)
    with connection.cursor() as cursor:
        for per_source, monthly in ((True, False), (True, True), (False, False)):
            cursor.execute(
                *spread.rollup_statement(
                    row.organization_id,
                    row.domain,
                    row.pk,
                    days,
                    per_source=per_source,
                    monthly=monthly,
                )
            )


def remember_selectors(organization_id: int, selectors: dict, seen: object) -> None:
    """The team's reports saw these (domain, selector) pairs on `seen`."""
    if not selectors:
        return
    found = models.ReportedSelector
    models.ReportedSelector.objects.bulk_create(
        [
            found(organization_id=organization_id, domain=d, selector=s, last_seen=seen)
            for d, s in selectors
        ],
        update_conflicts=True,
        unique_fields=["organization", "domain", "selector"],
        update_fields=["last_seen"],
    )


def _aggregate_outcome(row: models.AggregateReport, status: str) -> Outcome:
    return Outcome(
        file="",
        status=status,
        kind="aggregate",
        org_name=row.org_name,
        report_id=row.report_id,
        domain=row.domain,
        records=row.record_count,
        messages=row.message_count,
        report_pk=row.pk,
    )


# --- SMTP TLS --------------------------------------------------------------------------


def store_tls(report: types.TlsReport, raw: models.RawInput) -> Outcome:
    identity = {
        "organization_id": raw.organization_id,
        "org_name": report.org_name[:255],
        "report_id": report.report_id[:255],
    }
    row, created = _store_once(
        models.TlsReport, identity, lambda: _create_tls(report, raw, identity)
    )
    return _tls_outcome(row, "imported" if created else "duplicate")


def _create_tls(report: types.TlsReport, raw: models.RawInput, identity: dict):
    row = models.TlsReport.objects.create(
        raw=raw,
        **identity,
        contact_info=(report.contact_info or "")[:255],
        domain=report.domain,
        begin=report.begin,
        end=report.end,
        successful=sum(p.successful for p in report.policies),
        failed=sum(p.failed for p in report.policies),
    )
    models.TlsPolicy.objects.bulk_create(
        models.TlsPolicy(
            report=row,
            policy_type=policy.policy_type[:40],
            policy_domain=policy.policy_domain,
            policy_strings=policy.policy_strings,
            mx_hosts=policy.mx_hosts,
            successful=policy.successful,
            failed=policy.failed,
            failure_details=policy.failure_details,
        )
        for policy in report.policies
    )
    return row


def _tls_outcome(row: models.TlsReport, status: str) -> Outcome:
    return Outcome(
        file="",
        status=status,
        kind="tls",
        org_name=row.org_name,
        report_id=row.report_id,
        domain=row.domain,
        records=row.policies.count(),
        messages=row.successful + row.failed,
        report_pk=row.pk,
    )


# --- failure ---------------------------------------------------------------------------


def store_failure(report: types.FailureReport, raw: models.RawInput) -> Outcome:
    """Store a failure report; the same message (reporter and Message-ID, or the same bytes
    when it has no Message-ID) twice is one."""
    if report.report_id:
        same = {"org_name": report.org_name[:255], "report_id": report.report_id[:255]}
    else:
        same = {"raw": raw, "report_id": ""}
    same["organization_id"] = raw.organization_id
    existing = models.FailureReport.objects.filter(**same).first()
    status = "duplicate"
    if existing is None:
        existing, status = _create_failure(report, raw), "imported"
    return Outcome(
        file="",
        status=status,
        kind="failure",
        org_name=existing.org_name,
        report_id=existing.report_id,
        domain=existing.domain,
        records=1,
        messages=1,
        report_pk=existing.pk,
    )


FAILURE_TEXT_FIELDS = [
    "org_name", "report_id", "feedback_type", "user_agent", "version", "original_mail_from",
    "original_envelope_id", "auth_failure", "delivery_result", "dkim_domain", "dkim_selector",
    "dkim_identity", "identity_alignment", "reporting_mta",
]  # fmt: skip


def _create_failure(report: types.FailureReport, raw: models.RawInput):
    field = models.FailureReport._meta.get_field
    text = {f: (getattr(report, f) or "")[: field(f).max_length] for f in FAILURE_TEXT_FIELDS}
    return models.FailureReport.objects.create(
        organization_id=raw.organization_id,
        raw=raw,
        domain=report.domain[:253],
        arrival_date=report.arrival_date,
        source_ip=report.source_ip or None,
        original_rcpt_to=report.original_rcpt_to,
        authentication_results=report.authentication_results,
        spf_dns=report.spf_dns,
        sample_headers=[list(pair) for pair in report.sample_headers],
        **text,
    )


__all__ = ["Outcome", "ingest_input"]
