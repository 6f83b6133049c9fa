from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class PerTokenThrottle(SimpleRateThrottle):
    """MAILSEC_API_RATE requests a minute per token (a session: per user; anonymous: per
    address), counted in the shared cache so every web process sees the same count; past it,
    429 with Retry-After."""

    scope = "api"

    def get_rate(self):
        return f"{settings.MAILSEC_API_RATE}/min"

    def allow_request(self, request, view):
        # Read each time, so a changed setting (a test's) takes effect.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        token = request.auth
        if token is not None and hasattr(token, "token_hash"):
            ident = f"token-{token.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"address-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
