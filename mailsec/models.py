from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """Written by the `heartbeat` task that Celery beat schedules every minute, so the pages can
    say whether background work (checks, report fetching) is actually running."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self):
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def latest(cls):
        return cls.objects.order_by("-seen_at").first()
