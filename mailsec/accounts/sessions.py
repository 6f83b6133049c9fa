"""What a new session starts with."""

from domains import tenancy
from mailsec.models import Profile


def start_in_last_team(sender, request, user, **kwargs):
    """A new session works in the team the user last chose (kept on their profile), not in the
    first team by name: a rename of another team must not move anybody."""
    if request is None or not hasattr(request, "session"):
        return
    last = Profile.last_team_of(user)
    if last is not None:
        request.session[tenancy.SESSION_KEY] = last
