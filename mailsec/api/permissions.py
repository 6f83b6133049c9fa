from rest_framework import permissions

from mailsec.api.access import access_of


class TeamAccess(permissions.BasePermission):
    """A member of a team reads; writing needs a role that may edit and a read-write token;
    a view's `manage_actions` need an owner. Objects of other teams are never in a view's
    queryset, so they answer 404 before any of this is asked of them."""

    message = "Your role in this team, or this token, is read-only."

    def has_permission(self, request, view):
        access = access_of(request)
        if access is None:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        if getattr(view, "action", None) in getattr(view, "manage_actions", ()):
            self.message = "Only an owner of this team can do this (with a read-write token)."
            return access.can_manage
        return access.can_edit
