"""What a new session starts with."""

from domains import tenancy
from mailsec.accounts import locale
from mailsec.models import Profile


def start_in_last_team(sender, request, user, **kwargs):
    """A new session works in the team the user last chose (kept on their profile), not in the
    first team by name: a rename of another team must not move anybody. It also takes the
    user's language and time zone."""
    if request is None or not hasattr(request, "session"):
        return
    profile = Profile.objects.filter(user=user).first()
    if profile is None:
        return
    if profile.last_team_id is not None:
        request.session[tenancy.SESSION_KEY] = profile.last_team_id
    locale.remember(request.session, language=profile.language, time_zone=profile.time_zone)
