from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from domains import pages, tenancy
from mailsec.models import BeatHeartbeat, WorkerHeartbeat

WORKER_STALE_AFTER = timedelta(minutes=3)


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        # For the lockout page (django-axes renders it for an anonymous user).
        return {"lockout_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)}
    membership = tenancy.current_membership(request)
    context = {
        "current_membership": membership,
        "all_memberships": request._mailsec_memberships,
    }
    if request.user.is_staff:
        beat = WorkerHeartbeat.latest()
        context["worker_heartbeat"] = beat
        context["worker_stale"] = beat is None or timezone.now() - beat.seen_at > WORKER_STALE_AFTER
        context["resolver_trouble"] = pages.resolver_trouble()
        beats = BeatHeartbeat.running()
        context["beats_running"] = beats if len(beats) > 1 else []
    return context
