"""Which team an API request works in, and what it may do there: a token's team and its
user's role there (capped by the token's scope), or for a browser session the team chosen on
the pages (domains/tenancy.py)."""

from dataclasses import dataclass

from domains import tenancy
from domains.models import Organization, Role
from mailsec.api.models import ApiToken, Scope


@dataclass(frozen=True)
class Access:
    organization: Organization
    role: Role
    token: ApiToken | None = None

    @property
    def writes(self) -> bool:
        return self.token is None or self.token.scope == Scope.WRITE

    @property
    def can_edit(self) -> bool:
        return self.writes and self.role.can_edit

    @property
    def can_manage(self) -> bool:
        return self.writes and self.role.can_manage


def access_of(request) -> Access | None:
    """None for a request with no team (anonymous, or a user in no team)."""
    if hasattr(request, "_mailsec_access"):
        return request._mailsec_access
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None:
        access = Access(token.organization, Role(token.role), token)
    elif request.user is not None and request.user.is_authenticated:
        membership = tenancy.current_membership(request._request)
        access = membership and Access(membership.organization, Role(membership.role))
    else:
        access = None
    request._mailsec_access = access
    return access
