from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from domains.names import display_domain, lookalike_reason, unicode_domain

MIN_PROBE_INTERVAL = timedelta(hours=1)
DEFAULT_PROBE_INTERVAL = timedelta(days=1)
# How often the mail servers are probed (protocol probes are slower and less polite to repeat).
PROBE_INTERVALS = {
    timedelta(hours=1): _("every hour"),
    timedelta(hours=6): _("every 6 hours"),
    timedelta(hours=12): _("every 12 hours"),
    timedelta(days=1): _("daily"),
    timedelta(days=3): _("every 3 days"),
    timedelta(days=7): _("weekly"),
}
MIN_CHECK_INTERVAL = timedelta(minutes=15)
MAX_CHECK_INTERVAL = timedelta(days=7)
DEFAULT_CHECK_INTERVAL = timedelta(hours=6)
# The intervals offered in the forms, with how the pages say them.
CHECK_INTERVALS = {
    timedelta(minutes=15): _("every 15 minutes"),
    timedelta(minutes=30): _("every 30 minutes"),
    timedelta(hours=1): _("every hour"),
    timedelta(hours=2): _("every 2 hours"),
    timedelta(hours=6): _("every 6 hours"),
    timedelta(hours=12): _("every 12 hours"),
    timedelta(days=1): _("daily"),
    timedelta(days=3): _("every 3 days"),
    timedelta(days=7): _("weekly"),
}


class OrganizationQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(memberships__user=user)


def default_alert_events() -> list[str]:
    return ["grade_dropped", "finding_appeared", "record_changed", "server_changed", "new_sender"]


class Organization(models.Model):
    """A team: it owns domains (and later mailboxes and reports); users see only their teams'."""

    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    # Which domain events alert (EventKind values); findings alert from high severity up.
    alert_events = models.JSONField(default=default_alert_events, blank=True)
    # One message a day listing the events, instead of one message per check.
    alert_digest = models.BooleanField(default=False)
    alert_digest_sent_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MEMBER = "member", _("Member")
    VIEWER = "viewer", _("Viewer")

    @property
    def can_edit(self) -> bool:
        """Add, edit and delete domains (and later mailboxes)."""
        return self in (Role.OWNER, Role.MEMBER)

    @property
    def can_manage(self) -> bool:
        """Manage the team itself: members, roles, alert channels."""
        return self == Role.OWNER


class Membership(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_team")
        ]
        ordering = ["organization", "user__username"]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_edit(self) -> bool:
        return Role(self.role).can_edit

    @property
    def can_manage(self) -> bool:
        return Role(self.role).can_manage


class DomainQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(organization__memberships__user=user)


class Domain(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    # The stored form: lower-case ASCII, punycode for IDN labels, no trailing dot (see names.py).
    name = models.CharField(max_length=253, db_index=True)
    check_interval = models.DurationField(
        default=DEFAULT_CHECK_INTERVAL,
        validators=[MinValueValidator(MIN_CHECK_INTERVAL), MaxValueValidator(MAX_CHECK_INTERVAL)],
    )
    notes = models.TextField(blank=True)
    dkim_selectors = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Extra DKIM selectors to probe, besides the common ones."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The latest run, kept here so lists need no join.
    last_run = models.ForeignKey(
        "CheckRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # The last known grade: a run that could not test keeps the one before it on show.
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    grade = models.CharField(max_length=2, blank=True)
    graded_at = models.DateTimeField(null=True, blank=True)  # when that grade was computed
    grade_partial = models.BooleanField(default=False)  # computed without some categories
    # When the scheduler checks it next; claimed with a conditional UPDATE (see scheduling.py).
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Where users submit and read mail when SRV records do not say: "host" or "host:port".
    mail_access_hosts = models.JSONField(default=list, blank=True)
    # The protocol probes of the mail servers have their own schedule (see scheduling.py).
    probe_interval = models.DurationField(
        default=DEFAULT_PROBE_INTERVAL,
        validators=[MinValueValidator(MIN_PROBE_INTERVAL), MaxValueValidator(MAX_CHECK_INTERVAL)],
    )
    next_probe_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = DomainQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="one_domain_per_team")
        ]
        ordering = ["name"]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        """Unicode, with the punycode beside it when the Unicode could pass for another name."""
        return display_domain(self.name)

    @property
    def unicode_name(self) -> str:
        return unicode_domain(self.name)

    @property
    def lookalike(self) -> str:
        """Why the Unicode form could be mistaken for another name, or ""."""
        return lookalike_reason(self.unicode_name) if self.unicode_name != self.name else ""

    @property
    def grade_is_last_known(self) -> bool:
        """The latest check could not test: the grade shown is an earlier one."""
        return bool(
            self.grade
            and self.graded_at
            and self.last_checked_at
            and self.graded_at < self.last_checked_at
        )

    @property
    def check_interval_label(self) -> str:
        label = CHECK_INTERVALS.get(self.check_interval)
        if label:
            return str(label)
        minutes = int(self.check_interval.total_seconds() // 60)
        return ngettext("every %(count)d minute", "every %(count)d minutes", minutes) % {
            "count": minutes
        }

    @property
    def probe_interval_label(self) -> str:
        label = PROBE_INTERVALS.get(self.probe_interval)
        if label:
            return str(label)
        hours = int(self.probe_interval.total_seconds() // 3600)
        return ngettext("every %(count)d hour", "every %(count)d hours", hours) % {"count": hours}


class RunStatus(models.TextChoices):
    COMPLETE = "complete", _("Complete")
    PARTIAL = "partial", _("Partial (some checks could not be tested)")
    ERROR = "error", _("Could not test")


class CheckRunManager(models.Manager):
    @transaction.atomic
    def record(self, result, domain: "Domain | None" = None, trigger: str = "") -> "CheckRun":
        """Store an engine RunResult with its findings; a monitored domain keeps its latest."""
        run = self.create(
            domain=domain,
            name=result.domain,
            started_at=result.started_at,
            finished_at=result.finished_at,
            status=result.status,
            score=result.score,
            grade=result.grade,
            categories={n: c.as_dict() for n, c in result.categories.items()},
            queries=result.queries,
            trigger=trigger,
        )
        Finding.objects.bulk_create(
            Finding(
                run=run,
                kind=f.id,
                category=f.category,
                severity=str(f.severity),
                title=f.title,
                detail=f.detail,
                remediation=f.remediation,
                message=f.message or {},
            )
            for f in result.findings
        )
        if domain is not None:
            latest = {"last_run": run, "last_checked_at": run.finished_at}
            if run.grade:  # a run that could not test leaves the last known grade on show
                latest |= {"score": run.score, "grade": run.grade, "graded_at": run.finished_at}
                latest["grade_partial"] = run.status == RunStatus.PARTIAL
            Domain.objects.filter(pk=domain.pk).update(**latest)
        return run


class CheckRun(models.Model):
    """One check of one domain, kept for history: what DNS said, and the verdict."""

    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    name = models.CharField(max_length=253)  # the domain checked (also when not monitored)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=RunStatus.choices)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    grade = models.CharField(max_length=2, blank=True)
    # Per category: status, score, applicable, the raw records seen, the findings.
    categories = models.JSONField(default=dict)
    queries = models.PositiveIntegerField(default=0)
    trigger = models.CharField(max_length=20, blank=True)
    details_pruned = models.BooleanField(default=False)  # see retention.py

    objects = CheckRunManager()

    class Meta:
        indexes = [models.Index(fields=["domain", "-finished_at"], name="run_domain_recent")]
        ordering = ["-finished_at"]

    def __str__(self):
        return f"{self.name} {self.grade or self.status} at {self.finished_at:%Y-%m-%d %H:%M}"


class Finding(models.Model):
    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=64)  # the catalogue id, e.g. "spf.all_pass"
    category = models.CharField(max_length=20)
    severity = models.CharField(max_length=10)
    title = models.CharField(max_length=200)
    detail = models.TextField()
    remediation = models.TextField()
    # The evidence's template, its arguments and the domain, to show the finding in the
    # reader's language (domains.findings.localized); {} for findings stored before it.
    message = models.JSONField(default=dict, blank=True)

    class Meta:
        # (kind, -id), not (kind): the resolver banner asks every page for the newest finding
        # of one kind, usually of none, which the primary key's backward scan found by reading
        # every finding (8 ms at 20,000 findings, linear; docs/scaling.md).
        indexes = [models.Index(fields=["kind", "-id"], name="finding_kind_recent")]

    def __str__(self):
        return f"{self.kind}: {self.detail[:60]}"


class EventKind(models.TextChoices):
    GRADE_DROPPED = "grade_dropped", _("Grade dropped")
    GRADE_RAISED = "grade_raised", _("Grade raised")
    FINDING_APPEARED = "finding_appeared", _("Finding appeared")
    FINDING_RESOLVED = "finding_resolved", _("Finding resolved")
    RECORD_CHANGED = "record_changed", _("DNS record changed")
    SERVER_CHANGED = "server_changed", _("Mail server changed")
    CHECK_FAILED = "check_failed", _("Could not test")
    NEW_SENDER = "new_sender", _("New sender in DMARC reports")


class DomainEvent(models.Model):
    """A change seen between two runs: the domain's timeline, and what alerts are made of."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="events")
    run = models.ForeignKey(CheckRun, null=True, on_delete=models.SET_NULL, related_name="events")
    created_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    severity = models.CharField(max_length=10, blank=True)  # of the finding, when about one
    summary = models.CharField(max_length=300)
    data = models.JSONField(default=dict)  # before/after, the finding id, the record ...
    alerted = models.BooleanField(default=False)  # handed to the alert channels

    class Meta:
        indexes = [models.Index(fields=["domain", "-created_at"], name="event_domain_recent")]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.domain}: {self.summary}"

    @property
    def summary_text(self) -> str:
        """The summary in the active language (the stored one is English, as the API gives it)."""
        from domains.changes import describe

        return describe(self.kind, self.data, self.summary)


class ManualCheck(models.Model):
    """A "check now" request: rate-limited, and what the page polls for progress."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="manual_checks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    requested_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    run = models.ForeignKey(CheckRun, null=True, blank=True, on_delete=models.SET_NULL)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self):
        return f"{self.domain} at {self.requested_at:%H:%M:%S}: {self.state}"


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook")


class AlertChannel(models.Model):
    """Where a team's alerts go: e-mail addresses, or a URL that gets a signed JSON POST."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="alert_channels"
    )
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    target = models.CharField(max_length=1000)  # comma-separated addresses, or the URL
    # The HMAC-SHA256 key of a webhook's signature header; shown to the owners once made.
    secret = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # The language of an e-mail channel's alerts and digests (webhooks' JSON stays English).
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return f"{self.name} ({self.kind})"


class AlertDelivery(models.Model):
    """One message to one channel, with every attempt's outcome: visible on the settings page."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        RETRYING = "retrying", _("Retrying")
        FAILED = "failed", _("Failed")

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    subject = models.CharField(max_length=300)
    payload = models.JSONField(default=dict)  # what is sent (webhook body; e-mail's events)
    events = models.ManyToManyField(DomainEvent, blank=True, related_name="deliveries")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    is_test = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.channel}: {self.subject} ({self.state})"


class ServerProbeQuerySet(models.QuerySet):
    def latest_results(self, keys, since=None) -> dict:
        """The stored ProbeResult of each key (probed after `since`, when given)."""
        from domains.probing import result_from_dict

        rows = self.filter(key__in=[probe_key(k) for k in keys])
        if since is not None:
            rows = rows.filter(probed_at__gt=since)
        by_text = {probe_key(k): k for k in keys}
        return {by_text[row.key]: result_from_dict(row.result) for row in rows}

    def store(self, results) -> None:
        """Keep the latest result of each key (one row per key, replaced)."""
        from domains.probing import result_to_dict

        for result in results:
            target = result.target
            self.update_or_create(
                key=probe_key(target.key),
                defaults={
                    "host": target.host,
                    "address": target.address,
                    "port": target.port,
                    "service": str(target.service),
                    "tls_mode": str(target.tls_mode),
                    "result": result_to_dict(result),
                    "probed_at": result.probed_at,
                },
            )


def probe_key(key) -> str:
    """A Target.key as one string: address|port|service|mode|host."""
    return "|".join(str(part) for part in key)


class ServerProbe(models.Model):
    """The latest probe of one (address, port, service, TLS mode, host name), shared by every
    domain whose mail servers include it: reused within a probe interval, and what the DNS
    checks between two probe runs judge (with its time)."""

    key = models.CharField(max_length=400, unique=True)
    host = models.CharField(max_length=253)
    address = models.CharField(max_length=45)
    port = models.PositiveIntegerField()
    service = models.CharField(max_length=12)
    tls_mode = models.CharField(max_length=10)
    result = models.JSONField(default=dict)  # the ProbeResult (domains/probes/results.py)
    probed_at = models.DateTimeField(db_index=True)

    objects = ServerProbeQuerySet.as_manager()

    class Meta:
        ordering = ["host", "address", "port"]

    def __str__(self):
        return f"{self.host} ({self.address}) port {self.port} at {self.probed_at:%Y-%m-%d %H:%M}"
