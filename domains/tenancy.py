"""Which team a request works in, and what the user may do there.

A user may belong to several teams; the one they work in is kept in the session and chosen
with the switcher in the navigation; a new session starts in the team last chosen (kept on the
user's profile: mailsec/accounts/sessions.py). Objects of teams the user is not in answer 404,
never 403, so their existence does not leak; a viewer trying to change something gets 403.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _

from domains.models import Membership, Role
from mailsec.models import Profile

SESSION_KEY = "organization_id"


def memberships_of(user):
    return Membership.objects.filter(user=user).select_related("organization")


def current_membership(request) -> Membership | None:
    """The membership the request works in (cached on the request)."""
    if not hasattr(request, "_mailsec_membership"):
        memberships = list(memberships_of(request.user)) if request.user.is_authenticated else []
        wanted = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        chosen = next((m for m in memberships if m.organization_id == wanted), None)
        request._mailsec_membership = chosen or (memberships[0] if memberships else None)
        request._mailsec_memberships = memberships
    return request._mailsec_membership


def require_membership(request) -> Membership:
    membership = current_membership(request)
    if membership is None:
        raise Http404(_("You are not a member of any team."))
    return membership


def select_organization(request, organization_id: int) -> Membership:
    membership = Membership.objects.filter(
        user=request.user, organization_id=organization_id
    ).first()
    if membership is None:
        raise Http404(_("No such team."))
    request.session[SESSION_KEY] = membership.organization_id
    request._mailsec_membership = membership
    Profile.remember_team(request.user, membership.organization_id)
    return membership


def role_for(user, organization_id: int) -> Role:
    """The user's role in a team, or 404 if they are not in it."""
    role = (
        Membership.objects.filter(user=user, organization_id=organization_id)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise Http404(_("Not found."))
    return Role(role)


def require_edit(access: Role | Membership) -> None:
    if not access.can_edit:
        raise PermissionDenied(_("Your role in this team is read-only."))


def require_manage(access: Role | Membership) -> None:
    if not access.can_manage:
        raise PermissionDenied(_("Only an owner of this team can do this."))
