"""Celery beat's scheduler, which also records that beat dispatched (for /readyz): the
worker's heartbeat says tasks run, this one says they are still being sent."""

import logging

from celery.beat import PersistentScheduler

logger = logging.getLogger(__name__)


class HeartbeatScheduler(PersistentScheduler):
    def apply_entry(self, entry, producer=None):
        super().apply_entry(entry, producer=producer)
        try:
            record_beat()
        except Exception:
            # The schedule goes on without it: /readyz will say beat is stale.
            logger.exception("Could not record beat's heartbeat")


def record_beat() -> None:
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from mailsec.models import BeatHeartbeat

    BeatHeartbeat.record()
