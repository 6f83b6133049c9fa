"""The team's alert channels: read them, and send one a test alert (owners)."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from domains import alerts
from domains.models import AlertChannel
from mailsec.api import serializers as api
from mailsec.api.base import TeamViewSet


class ChannelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamViewSet):
    queryset = AlertChannel.objects.none()
    serializer_class = api.ChannelSerializer
    pagination_class = None
    manage_actions = ("test",)

    def team_queryset(self, team):
        return AlertChannel.objects.filter(organization=team)

    def get_serializer_context(self):
        access = self.access if not getattr(self, "swagger_fake_view", False) else None
        return super().get_serializer_context() | {
            "full_targets": bool(access and access.role.can_manage)
        }

    @extend_schema(request=None, responses=api.DeliverySerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send the channel a sample alert now (owners); the answer says how it went."""
        delivery = alerts.send_test(self.get_object())
        return Response(api.DeliverySerializer(delivery).data)
