from rest_framework import viewsets

from mailsec.api.access import Access, access_of


class TeamViewSet(viewsets.GenericViewSet):
    """A view set over one team's objects: `team_queryset` filters them, so another team's
    object is never found (404), whatever the route."""

    lookup_value_converter = "id"

    @property
    def access(self) -> Access:
        return access_of(self.request)

    @property
    def team(self):
        return self.access.organization

    def team_queryset(self, team):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no request team
            return self.queryset
        return self.team_queryset(self.team)
