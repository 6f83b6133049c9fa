import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from domains.models import Membership, Role


class WorkerHeartbeat(models.Model):
    """Written by a worker as it becomes ready (mailsec/celery.py) and then by the `heartbeat`
    task that Celery beat schedules every minute, so the pages can say whether background work
    (checks, report fetching) is actually running."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self):
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def latest(cls):
        return cls.objects.order_by("-seen_at").first()


class BeatHeartbeat(models.Model):
    """Written by each running `celery beat` as it starts and then at most every
    SEND_EVERY as it sends its tasks (mailsec/celery.py), under an identity of its own
    (host, process, a random tag). Two identities seen within SEEN_WITHIN means two schedulers
    run: checks stay single (the dispatcher's claim), but every other beat task runs twice, so
    the staff pages warn."""

    SEND_EVERY = timedelta(seconds=30)
    # Beat sends a task at least every minute (the dispatcher): a running beat is never older.
    SEEN_WITHIN = timedelta(minutes=2, seconds=30)

    identity = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self):
        return f"beat {self.identity} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def running(cls, now=None) -> list["BeatHeartbeat"]:
        """The schedulers seen lately (one query)."""
        since = (now or timezone.now()) - cls.SEEN_WITHIN
        return list(cls.objects.filter(seen_at__gt=since))

    @classmethod
    def last_seen(cls):
        """When any scheduler last recorded itself (for /readyz), or None."""
        return cls.objects.aggregate(last=models.Max("seen_at"))["last"]


# --- accounts: the user's last team, a team's sign-in policy, invitations, the audit log ------


class Profile(models.Model):
    """What mailsec keeps about a user beyond Django's account."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailsec_profile"
    )
    # The team the user last chose: used when the session has not chosen one, so neither the
    # order of team names nor a rename decides where somebody lands.
    last_team = models.ForeignKey(
        "domains.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The language of the pages and e-mails ("" follows the browser) and the time zone dates are
    # shown in ("" is UTC); copied into the session at sign-in (mailsec/accounts/locale.py).
    language = models.CharField(max_length=8, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self):
        return f"profile of {self.user}"

    @classmethod
    def remember_team(cls, user, organization_id: int) -> None:
        cls.objects.update_or_create(user=user, defaults={"last_team_id": organization_id})


class TeamSecurity(models.Model):
    """A team's sign-in policy, set by its owners."""

    organization = models.OneToOneField(
        "domains.Organization", on_delete=models.CASCADE, primary_key=True, related_name="security"
    )
    require_two_factor = models.BooleanField(default=False)

    def __str__(self):
        return f"sign-in policy of {self.organization}"

    @classmethod
    def requires_two_factor(cls, organization) -> bool:
        return cls.objects.filter(organization=organization, require_two_factor=True).exists()

    @classmethod
    def required_for_user(cls, user) -> bool:
        """Whether any team of the user requires two-factor sign-in."""
        return cls.objects.filter(
            require_two_factor=True, organization__memberships__user=user
        ).exists()

    @classmethod
    def set_required(cls, organization, required: bool) -> bool:
        """Set the policy; True when it changed."""
        policy, _ = cls.objects.get_or_create(organization=organization)
        if policy.require_two_factor == required:
            return False
        policy.require_two_factor = required
        policy.save(update_fields=["require_two_factor"])
        return True


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(accepted_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """A one-time, expiring link that lets whoever holds it join a team (with an account they
    have or make). Only a hash of the link's token is stored; nobody's user name is looked up
    when inviting, so inviting tells nothing about which accounts exist."""

    organization = models.ForeignKey(
        "domains.Organization", on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"invitation of {self.email} to {self.organization_id}"

    @classmethod
    def issue(cls, organization, email: str, role: str, by) -> tuple["Invitation", str]:
        """A new invitation and the token of its link (which is not stored)."""
        token = secrets.token_urlsafe(32)
        invitation = cls.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_hash=_token_hash(token),
            invited_by=by,
            expires_at=timezone.now() + timedelta(days=settings.MAILSEC_INVITATION_DAYS),
        )
        return invitation, token

    @classmethod
    def find(cls, token: str) -> "Invitation | None":
        """The pending invitation this token opens, if any."""
        return (
            cls.objects.pending()
            .select_related("organization")
            .filter(token_hash=_token_hash(token))
            .first()
        )

    def accept(self, user):
        """Make the user a member; None when the invitation was used or expired meanwhile.

        The conditional UPDATE claims it, so two tabs (or two people) cannot both use it."""
        with transaction.atomic():
            claimed = (
                Invitation.objects.pending()
                .filter(pk=self.pk)
                .update(accepted_at=timezone.now(), accepted_by=user)
            )
            if claimed != 1:
                return None
            membership, _ = Membership.objects.get_or_create(
                organization_id=self.organization_id, user=user, defaults={"role": self.role}
            )
        return membership


class AuditAction(models.TextChoices):
    DOMAIN_ADDED = "domain.added", gettext_lazy("added the domain")
    DOMAIN_CHANGED = "domain.changed", gettext_lazy("changed the domain")
    DOMAIN_DELETED = "domain.deleted", gettext_lazy("deleted the domain")
    CHANNEL_ADDED = "channel.added", gettext_lazy("added the alert channel")
    CHANNEL_ENABLED = "channel.enabled", gettext_lazy("enabled the alert channel")
    CHANNEL_DISABLED = "channel.disabled", gettext_lazy("disabled the alert channel")
    CHANNEL_DELETED = "channel.deleted", gettext_lazy("deleted the alert channel")
    MAILBOX_ADDED = "mailbox.added", gettext_lazy("added the report mailbox")
    MAILBOX_CHANGED = "mailbox.changed", gettext_lazy("changed the report mailbox")
    MAILBOX_DELETED = "mailbox.deleted", gettext_lazy("deleted the report mailbox")
    MEMBER_JOINED = "member.joined", gettext_lazy("joined the team")
    MEMBER_ROLE_CHANGED = "member.role_changed", gettext_lazy("changed the role of")
    MEMBER_REMOVED = "member.removed", gettext_lazy("removed from the team")
    INVITATION_SENT = "invitation.sent", gettext_lazy("invited")
    INVITATION_REVOKED = "invitation.revoked", gettext_lazy("revoked the invitation of")
    TOKEN_ADDED = "token.added", gettext_lazy("added the API token")
    TOKEN_DELETED = "token.deleted", gettext_lazy("deleted the API token")
    TWO_FACTOR_REQUIRED = "team.two_factor_required", gettext_lazy("required two-factor sign-in")
    TWO_FACTOR_OPTIONAL = (
        "team.two_factor_optional",
        gettext_lazy("made two-factor sign-in optional"),
    )
    TEAM_RENAMED = "team.renamed", gettext_lazy("renamed the team to")
    ALERTS_CHANGED = "team.alerts_changed", gettext_lazy("changed the alert preferences")


class AuditEvent(models.Model):
    """Who changed what in a team: kept MAILSEC_AUDIT_DAYS (400) days, shown to its owners."""

    organization = models.ForeignKey(
        "domains.Organization", on_delete=models.CASCADE, related_name="audit_events"
    )
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Kept as text too, so the log still names who did it after the account is deleted.
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    subject = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["organization", "-at"], name="audit_by_team_and_time")]

    def __str__(self):
        return f"{self.actor_name} {self.get_action_display()} {self.subject}"

    @classmethod
    def record(cls, organization, actor, action: AuditAction, subject="", **detail):
        return cls.objects.create(
            organization=organization,
            actor=actor if actor is not None and actor.is_authenticated else None,
            actor_name=actor.get_username() if actor is not None else "",
            action=action,
            subject=str(subject)[:300],
            detail=detail,
        )

    @classmethod
    def record_each(cls, organization, actor, action: AuditAction, subjects) -> None:
        """One event per subject (a bulk add of domains), in one query."""
        cls.objects.bulk_create(
            cls(
                organization=organization,
                actor=actor,
                actor_name=actor.get_username(),
                action=action,
                subject=str(subject)[:300],
            )
            for subject in subjects
        )

    @classmethod
    def prune(cls, now=None) -> int:
        """Delete the events older than the retention; returns how many went."""
        cutoff = (now or timezone.now()) - timedelta(days=settings.MAILSEC_AUDIT_DAYS)
        deleted, _ = cls.objects.filter(at__lt=cutoff).delete()
        return deleted
