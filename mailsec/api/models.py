"""API tokens: made and revoked on the settings page (or `manage.py api_token`), each for one
team, acting as the user who made it within that team's role, read-only or read-write."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.crypto import salted_hmac

from domains.models import Membership, Role

TOKEN_PREFIX = "mailsec_"
# Enough of the token to tell tokens apart on the settings page, far too little to guess it.
SHOWN_CHARACTERS = len(TOKEN_PREFIX) + 6
# last_used_at is written at most this often per token, so a busy script does not turn every
# request into a write.
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_EXPIRY_DAYS = 3650


class Scope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


def token_hash(token: str) -> str:
    """A keyed SHA-256 (HMAC with a key derived from SECRET_KEY) of the token.

    A fast hash is right here, unlike for passwords: the token is 256 random bits, so nobody
    can guess it however many guesses a second a hash allows; a slow hash would only slow every
    API request. The key means that a copy of the database alone cannot even test a guess.
    Rotating SECRET_KEY makes every token invalid."""
    return salted_hmac("mailsec.api.token", token, algorithm="sha256").hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None):
        """Tokens not expired, whose user is active and still in the token's team (annotated
        with their role there)."""
        now = now or timezone.now()
        role = Membership.objects.filter(
            user=OuterRef("user"), organization=OuterRef("organization")
        ).values("role")[:1]
        return (
            self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), user__is_active=True)
            .annotate(role=Subquery(role))
            .filter(role__isnull=False)
        )


class ApiToken(models.Model):
    organization = models.ForeignKey(
        "domains.Organization", on_delete=models.CASCADE, related_name="api_tokens"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    # The start of the token, shown to tell tokens apart; the token itself is never stored.
    shown = models.CharField(max_length=20)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.shown}…)"

    @classmethod
    def issue(cls, organization, user, name: str, scope: str, expires_days: int | None = None):
        """A new token and its secret text, which is shown once and never stored."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        token = cls.objects.create(
            organization=organization,
            user=user,
            name=name,
            scope=scope,
            shown=secret[:SHOWN_CHARACTERS],
            token_hash=token_hash(secret),
            expires_at=expires_at,
        )
        return token, secret

    @classmethod
    def authenticate(cls, secret: str) -> "ApiToken | None":
        """The usable token with this secret (with its user and role), or None."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        found = (
            cls.objects.usable()
            .select_related("user", "organization")
            .filter(token_hash=token_hash(secret))
            .first()
        )
        if found is not None:
            found.mark_used()
        return found

    def mark_used(self, now=None) -> None:
        now = now or timezone.now()
        if self.last_used_at and now - self.last_used_at < LAST_USED_PRECISION:
            return
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
        ApiToken.objects.filter(stale, pk=self.pk).update(last_used_at=now)
        self.last_used_at = now

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def can_write(self) -> bool:
        """Writing needs a read-write token and a role that may edit (the role as it is now)."""
        role = getattr(self, "role", None)
        return self.scope == Scope.WRITE and role is not None and Role(role).can_edit
