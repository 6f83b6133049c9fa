"""Stored reports.

A report belongs to the team that received it (through its report mailbox, its upload, or
`import_reports --team`), never to whoever monitors its domain: adding a domain name reveals
nothing another team received. Reports imported without a team are "unclaimed" (organization
NULL) until staff assign them (reports.ingest.assign). Everything derived from reports (inputs,
rollups, selectors) is kept per team too, and a report is stored once per team that received it.
"""

from __future__ import annotations

import gzip

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy

UNCLAIMED = Q(organization__isnull=True)


def owner():
    """The team a report, input, rollup or selector belongs to; NULL is unclaimed."""
    return models.ForeignKey(
        "domains.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )


def team():
    """The team of what only exists for a team's reports (rollups, selectors)."""
    return models.ForeignKey("domains.Organization", on_delete=models.CASCADE, related_name="+")


def once_per_team(fields: list[str], name: str) -> list[models.UniqueConstraint]:
    """`fields` identify one row per team, and one among the unclaimed (where NULL, being
    distinct from NULL, would let any number in)."""
    return [
        models.UniqueConstraint(fields=["organization", *fields], name=name),
        models.UniqueConstraint(fields=fields, condition=UNCLAIMED, name=f"{name}_unclaimed"),
    ]


# A team's deletion takes its reports and inputs with it; otherwise a report keeps its input.
KEEP_INPUT = models.RESTRICT


class InputStatus(models.TextChoices):
    IMPORTED = "imported", gettext_lazy("Imported")
    DUPLICATE = "duplicate", gettext_lazy("Duplicate")
    PARTIAL = "partial", gettext_lazy("Partly refused")
    REFUSED = "refused", gettext_lazy("Refused")


class InputSource(models.TextChoices):
    UPLOAD = "upload", gettext_lazy("Upload")
    COMMAND = "command", gettext_lazy("Command line")
    MAILBOX = "mailbox", gettext_lazy("Mailbox")


class RawInput(models.Model):
    """An input exactly as received (a file, an upload, one mail message), kept compressed.

    `content` holds the original bytes, gzip-compressed unless they already were
    a gzip or zip container (`encoding` says which), so refused inputs can be
    inspected and every report re-parsed later.
    """

    organization = owner()
    sha256 = models.CharField(max_length=64)
    name = models.CharField(max_length=500)
    size = models.BigIntegerField()
    encoding = models.CharField(max_length=10, default="gzip")  # "gzip" or "identity"
    content = models.BinaryField()
    source = models.CharField(max_length=10, choices=InputSource.choices)
    status = models.CharField(max_length=10, choices=InputStatus.choices)
    reason = models.TextField(blank=True)
    uploaded_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "-received_at"])]
        constraints = once_per_team(["sha256"], "raw_input_identity")

    def __str__(self):
        return f"{self.name} ({self.status})"

    def original(self) -> bytes:
        data = bytes(self.content)
        return gzip.decompress(data) if self.encoding == "gzip" else data


class AggregateReport(models.Model):
    organization = owner()
    # NULL once retention (reports/retention.py) has deleted an old input: the report itself
    # stays, without its records, so that it is still known (a copy arriving again is a
    # duplicate, not counted twice into the rollups).
    raw = models.ForeignKey(
        RawInput,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="aggregate_reports",
    )
    org_name = models.CharField(max_length=255)
    email = models.CharField(max_length=255, blank=True)
    extra_contact_info = models.TextField(blank=True)
    report_id = models.CharField(max_length=255)
    domain = models.CharField(max_length=253, db_index=True)  # policy domain, A-label
    begin = models.DateTimeField()
    end = models.DateTimeField()
    version = models.CharField(max_length=20, blank=True)
    generator = models.CharField(max_length=255, blank=True)
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    adkim = models.CharField(max_length=10, blank=True)
    aspf = models.CharField(max_length=10, blank=True)
    p = models.CharField(max_length=20, blank=True)
    sp = models.CharField(max_length=20, blank=True)
    np = models.CharField(max_length=20, blank=True)
    pct = models.PositiveSmallIntegerField(null=True, blank=True)
    fo = models.CharField(max_length=20, blank=True)
    testing = models.CharField(max_length=10, blank=True)
    discovery_method = models.CharField(max_length=20, blank=True)
    record_count = models.PositiveIntegerField(default=0)
    message_count = models.BigIntegerField(default=0)
    dmarc_pass = models.BigIntegerField(default=0)  # messages with DKIM or SPF aligned pass
    received_at = models.DateTimeField(auto_now_add=True)
    records_pruned = models.BooleanField(default=False)  # by retention; the counts stay

    class Meta:
        ordering = ["-begin", "-id"]
        constraints = once_per_team(
            ["org_name", "report_id", "domain", "begin", "end"], "aggregate_report_identity"
        )
        indexes = [
            models.Index(fields=["organization", "domain", "-begin"]),
            # The reports index, newest first: without it each page sorted all the team's
            # reports (12 ms for 10,000 on SQLite).
            models.Index(fields=["organization", "-begin", "-id"], name="aggregate_team_newest"),
        ]

    def __str__(self):
        return f"{self.org_name} {self.report_id} ({self.domain})"


class WrittenJSONField(models.JSONField):
    """A JSONField without the JSON_VALID check Django puts on it in SQLite, where that check
    parsed every record's three small arrays again on insert (a third of an insert's cost).
    Records are written by reports.ingest through reports/rows.pyx, whose JSON is tested to
    read back exactly, or through the ORM, which serialises it. PostgreSQL stores jsonb and
    checks nothing more either way."""

    def db_check(self, connection):
        return None


class AggregateRecord(models.Model):
    # No constraint in the database: records are only ever written by reports.ingest, in the
    # transaction that creates their report, and deleted through the ORM (which cascades).
    # The check would cost a lookup per record at commit: 10% of a large report's import on
    # PostgreSQL. The index stays.
    report = models.ForeignKey(
        AggregateReport, on_delete=models.CASCADE, related_name="records", db_constraint=False
    )
    source_ip = models.GenericIPAddressField()
    count = models.BigIntegerField()
    disposition = models.CharField(max_length=32, blank=True)
    dkim = models.CharField(max_length=32, blank=True)  # policy_evaluated: aligned DKIM
    spf = models.CharField(max_length=32, blank=True)  # policy_evaluated: aligned SPF
    header_from = models.CharField(max_length=253, blank=True)
    envelope_from = models.CharField(max_length=253, blank=True)
    envelope_to = models.CharField(max_length=253, blank=True)
    reasons = WrittenJSONField(default=list, blank=True)
    dkim_results = WrittenJSONField(default=list, blank=True)
    spf_results = WrittenJSONField(default=list, blank=True)

    def __str__(self):
        return f"{self.source_ip} x{self.count}"


class MessageCounts(models.Model):
    """What the rollups count of a set of messages (DailyRollup, MonthlyRollup, DailyTotal)."""

    messages = models.BigIntegerField(default=0)
    disposition_none = models.BigIntegerField(default=0)
    disposition_quarantine = models.BigIntegerField(default=0)
    disposition_reject = models.BigIntegerField(default=0)
    dmarc_pass = models.BigIntegerField(default=0)
    dkim_pass = models.BigIntegerField(default=0)  # aligned DKIM pass (policy_evaluated)
    spf_pass = models.BigIntegerField(default=0)  # aligned SPF pass (policy_evaluated)

    class Meta:
        abstract = True


class DailyRollup(MessageCounts):
    """A team's messages per policy domain, UTC day (of the report's begin) and source IP.
    Only a team's reports count: unclaimed ones are added when staff assign them."""

    organization = team()
    domain = models.CharField(max_length=253)
    day = models.DateField()
    source_ip = models.GenericIPAddressField()

    class Meta:
        # The unique index also serves the pages' (team, domain, day) range scans.
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "domain", "day", "source_ip"],
                name="daily_rollup_identity",
            )
        ]

    def __str__(self):
        return f"{self.domain} {self.day} {self.source_ip}: {self.messages}"


class MonthlyRollup(MessageCounts):
    """A team's messages per policy domain, UTC month and source IP: its DailyRollup rows of
    the month summed, kept by reports.ingest beside them. A long range's sources read the
    range's whole months here and only its edge days from DailyRollup: a year is a dozen rows
    per source rather than one per day it sent."""

    organization = team()
    domain = models.CharField(max_length=253)
    month = models.DateField()  # its first day
    source_ip = models.GenericIPAddressField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "domain", "month", "source_ip"],
                name="monthly_rollup_identity",
            )
        ]

    def __str__(self):
        return f"{self.domain} {self.month:%Y-%m} {self.source_ip}: {self.messages}"


class DailyTotal(MessageCounts):
    """A team's messages per policy domain and UTC day: its DailyRollup rows summed, kept by
    reports.ingest beside them, so that a year's chart or totals read 365 rows rather than
    every source of every day."""

    organization = team()
    domain = models.CharField(max_length=253)
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "domain", "day"], name="daily_total_identity"
            )
        ]

    def __str__(self):
        return f"{self.domain} {self.day}: {self.messages}"


class ReportedSelector(models.Model):
    """A DKIM selector seen signing for a domain in a team's aggregate reports."""

    organization = team()
    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63)
    last_seen = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "domain", "selector"], name="reported_selector"
            )
        ]

    def __str__(self):
        return f"{self.selector}._domainkey.{self.domain}"

    @classmethod
    def for_domains(cls, organization, domains, *, limit: int = 50) -> dict[str, list[str]]:
        """The selectors the team's reports saw for each of `domains`, most recently seen
        first, in one query."""
        found: dict[str, list[str]] = {}
        rows = cls.objects.filter(organization=organization, domain__in=domains)
        rows = rows.order_by("domain", "-last_seen", "selector")
        for domain, selector in rows.values_list("domain", "selector"):
            seen = found.setdefault(domain, [])
            if len(seen) < limit:
                seen.append(selector)
        return found

    @classmethod
    def for_domain(cls, organization, domain: str, *, limit: int = 50) -> list[str]:
        return cls.for_domains(organization, [domain], limit=limit).get(domain, [])


class TlsReport(models.Model):
    organization = owner()
    raw = models.ForeignKey(RawInput, on_delete=KEEP_INPUT, related_name="tls_reports")
    org_name = models.CharField(max_length=255)
    contact_info = models.CharField(max_length=255, blank=True)
    report_id = models.CharField(max_length=255)
    domain = models.CharField(max_length=253, db_index=True)  # first policy's domain
    begin = models.DateTimeField()
    end = models.DateTimeField()
    successful = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-begin", "-id"]
        constraints = once_per_team(["org_name", "report_id"], "tls_report_identity")
        indexes = [models.Index(fields=["organization", "-begin", "-id"], name="tls_team_newest")]

    def __str__(self):
        return f"{self.org_name} {self.report_id} ({self.domain})"


class TlsPolicy(models.Model):
    report = models.ForeignKey(TlsReport, on_delete=models.CASCADE, related_name="policies")
    policy_type = models.CharField(max_length=40)
    policy_domain = models.CharField(max_length=253, db_index=True)
    policy_strings = models.JSONField(default=list, blank=True)
    mx_hosts = models.JSONField(default=list, blank=True)
    successful = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    failure_details = models.JSONField(default=list, blank=True)

    def __str__(self):
        return f"{self.policy_type} {self.policy_domain}"


class FailureReport(models.Model):
    organization = owner()
    raw = models.ForeignKey(RawInput, on_delete=KEEP_INPUT, related_name="failure_reports")
    domain = models.CharField(max_length=253, db_index=True)  # Reported-Domain
    org_name = models.CharField(max_length=255, blank=True)
    report_id = models.CharField(max_length=255, blank=True)
    feedback_type = models.CharField(max_length=40)
    user_agent = models.CharField(max_length=255, blank=True)
    version = models.CharField(max_length=20, blank=True)
    arrival_date = models.DateTimeField(null=True, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    original_mail_from = models.CharField(max_length=320, blank=True)
    original_rcpt_to = models.TextField(blank=True)
    original_envelope_id = models.CharField(max_length=255, blank=True)
    auth_failure = models.CharField(max_length=100, blank=True)
    authentication_results = models.TextField(blank=True)
    delivery_result = models.CharField(max_length=40, blank=True)
    dkim_domain = models.CharField(max_length=253, blank=True)
    dkim_selector = models.CharField(max_length=63, blank=True)
    dkim_identity = models.CharField(max_length=320, blank=True)
    spf_dns = models.TextField(blank=True)
    identity_alignment = models.CharField(max_length=100, blank=True)
    reporting_mta = models.CharField(max_length=255, blank=True)
    sample_headers = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-arrival_date", "-id"]
        indexes = [
            models.Index(fields=["organization", "domain"]),
            models.Index(
                fields=["organization", "-arrival_date", "-id"], name="failure_team_newest"
            ),
        ]

    def __str__(self):
        return f"{self.feedback_type} {self.domain} {self.source_ip}"


# --- the report mailbox (IMAP) ---------------------------------------------------------


class MailProtocol(models.TextChoices):
    IMAP = "imap", "IMAP"
    POP3 = "pop3", "POP3"


class TlsMode(models.TextChoices):
    IMPLICIT = "implicit", gettext_lazy("TLS (usually port 993 for IMAP, 995 for POP3)")
    STARTTLS = "starttls", gettext_lazy("STARTTLS (usually port 143 for IMAP, 110 for POP3)")
    PLAIN = "plain", gettext_lazy("No encryption (only where explicitly allowed)")


# The port a mailbox uses when none is given: by protocol, then by TLS mode.
DEFAULT_PORTS = {
    MailProtocol.IMAP: {TlsMode.IMPLICIT: 993, TlsMode.STARTTLS: 143, TlsMode.PLAIN: 143},
    MailProtocol.POP3: {TlsMode.IMPLICIT: 995, TlsMode.STARTTLS: 110, TlsMode.PLAIN: 110},
}


class Mailbox(models.Model):
    """A team's DMARC report mailbox: where its rua= (and TLS-RPT rua=) mail arrives.

    Over IMAP messages are moved to folders once stored; over POP3, which has no folders,
    they are deleted from the server once stored (the folder fields are not used)."""

    organization = models.ForeignKey(
        "domains.Organization", on_delete=models.CASCADE, related_name="mailboxes"
    )
    name = models.CharField(max_length=100)
    protocol = models.CharField(
        max_length=4, choices=MailProtocol.choices, default=MailProtocol.IMAP
    )
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=993)
    tls_mode = models.CharField(max_length=10, choices=TlsMode.choices, default=TlsMode.IMPLICIT)
    allow_plaintext = models.BooleanField(default=False)
    username = models.CharField(max_length=255)
    password_encrypted = models.TextField(blank=True)  # Fernet token; see reports/secrets.py
    folder = models.CharField(max_length=255, default="INBOX")
    processed_folder = models.CharField(max_length=255, blank=True, default="dmarc/processed")
    invalid_folder = models.CharField(max_length=255, blank=True, default="dmarc/invalid")
    read_only = models.BooleanField(default=False)
    interval_minutes = models.PositiveIntegerField(default=5)
    enabled = models.BooleanField(default=True)
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A pass holds the mailbox until this time (a lease, renewed while it runs), so two
    # passes never work on one mailbox at once and a killed worker's lease runs out.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_pass = models.ForeignKey(
        "MailboxPass", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self):
        return f"{self.name} ({self.username}@{self.host})"


class MailboxPass(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", gettext_lazy("Queued")
        RUNNING = "running", gettext_lazy("Running")
        DONE = "done", gettext_lazy("Done")
        FAILED = "failed", gettext_lazy("Failed")
        SKIPPED = "skipped", gettext_lazy("Skipped (another pass was running)")

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="passes")
    trigger = models.CharField(max_length=10, default="schedule")  # schedule | manual | command
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)  # new messages found
    fetched = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.mailbox} {self.state} {self.created_at:%Y-%m-%d %H:%M}"


class ProcessedMessage(models.Model):
    """A message a pass has handled: by (folder, UIDVALIDITY, UID), never handled twice.

    `moved` is False until the message has left the source folder (or forever, in read-only
    mode): a pass that died between storing and moving only moves it next time."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="processed")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    raw = models.ForeignKey(RawInput, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=InputStatus.choices)
    moved = models.BooleanField(default=False)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "folder", "uidvalidity", "uid"], name="processed_message"
            )
        ]

    def __str__(self):
        return f"{self.folder} {self.uidvalidity}/{self.uid} {self.status}"


class Pop3Message(models.Model):
    """A message of a POP3 mailbox a pass has handled, by the server's unique id (UIDL): never
    stored twice. A pass whose connection dropped before QUIT deleted nothing on the server:
    while the server still lists a remembered message, the next pass deletes it without storing
    it again (unless the mailbox is read-only, or `kept`: too big to fetch, left for a person).
    Rows of messages the server no longer lists are forgotten (RFC 1939: ids are not reused)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="pop3_messages")
    uidl = models.CharField(max_length=70)  # RFC 1939 7: 1 to 70 characters 0x21 to 0x7E
    status = models.CharField(max_length=10, choices=InputStatus.choices)
    kept = models.BooleanField(default=False)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "uidl"], name="processed_pop3_message")
        ]

    def __str__(self):
        return f"{self.uidl} {self.status}"


# --- uploads (parsed by the worker: reports/uploads.py) ---------------------------------------


class Upload(models.Model):
    """One upload of report files by a team member: stored and answered at once, each file
    parsed on the `ingest` queue; the upload's page follows their progress."""

    organization = models.ForeignKey(
        "domains.Organization", on_delete=models.CASCADE, related_name="+"
    )
    uploaded_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"upload {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"


class UploadFile(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", gettext_lazy("Queued")
        RUNNING = "running", gettext_lazy("Parsing")
        DONE = "done", gettext_lazy("Done")
        FAILED = "failed", gettext_lazy("Failed")

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=500)
    raw = models.ForeignKey(RawInput, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)  # parses started (a worker may die)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcomes = models.JSONField(default=list, blank=True)  # reports.ingest.Outcome, as dicts
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["state", "queued_at"])]

    def __str__(self):
        return f"{self.name} ({self.state})"

    @property
    def pending(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)


# --- senders (reports/senders/) ------------------------------------------------------------------


class PtrStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Not looked up yet")
    FOUND = "found", gettext_lazy("Found")
    NONE = "none", gettext_lazy("No PTR record")
    FAILED = "failed", gettext_lazy("Lookup failed (retried later)")


class SourceAddress(models.Model):
    """What reverse DNS and the registries say of one source IP of the reports: one row per
    address for every team, since PTR records and registry data are public (what a team thinks of
    a sender is its own: SenderMark). Filled in by the worker (reports/senders/enrich.py), and
    looked up again once `expires_at` has passed."""

    ip = models.GenericIPAddressField(unique=True)
    ptr_status = models.CharField(
        max_length=10, choices=PtrStatus.choices, default=PtrStatus.PENDING
    )
    ptr = models.CharField(max_length=253, blank=True)  # the name shown (confirmed one first)
    # The PTR name resolves back to the address (forward-confirmed reverse DNS); None when
    # there is no name, or its forward lookup failed.
    fcrdns = models.BooleanField(null=True)
    base_domain = models.CharField(max_length=253, blank=True)  # of `ptr`, by the PSL
    country = models.CharField(max_length=2, blank=True)  # ISO 3166-1 alpha-2, by the RIRs
    looked_up_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.ip} {self.ptr or self.ptr_status}"


class SenderVerdict(models.TextChoices):
    OURS = "ours", gettext_lazy("Ours")
    NOT_OURS = "not_ours", gettext_lazy("Not ours")


class SenderMark(models.Model):
    """A team's word on one sender of one of its domains: it sends for us, or it does not.
    `sender` is the sender's key (reports/senders/grouping.py): a service, a base domain or
    an address block."""

    organization = team()
    domain = models.ForeignKey("domains.Domain", on_delete=models.CASCADE, related_name="+")
    sender = models.CharField(max_length=300)
    verdict = models.CharField(max_length=10, choices=SenderVerdict.choices)
    marked_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    marked_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["domain", "sender"], name="one_mark_per_sender")
        ]

    def __str__(self):
        return f"{self.sender}: {self.verdict}"


class SeenSender(models.Model):
    """A sender already seen in a team's reports of a policy domain: the first time one shows
    up, above MAILSEC_NEW_SENDER_MESSAGES messages, is an event (and an alert)."""

    organization = team()
    domain = models.CharField(max_length=253)  # policy domain, A-label (like DailyRollup)
    sender = models.CharField(max_length=300)
    first_seen = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "domain", "sender"], name="seen_sender_identity"
            )
        ]

    def __str__(self):
        return f"{self.domain}: {self.sender} since {self.first_seen}"


class PendingSenders(models.Model):
    """An aggregate report whose source addresses are still to be looked up and whose senders
    are still to be noted: ingestion adds the row in the report's own transaction (no broker
    round trip on its path), the worker drains them in batches (reports/senders/enrich.py)."""

    report = models.OneToOneField(AggregateReport, on_delete=models.CASCADE, related_name="+")
    noted_at = models.DateTimeField(auto_now_add=True)
    # A drain's lease on the row: another drain leaves it alone until then (a drain that died
    # lets it go when the lease ends).
    claimed_until = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"senders of report {self.report_id}"
