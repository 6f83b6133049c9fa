import uuid

import pytest
from django.test import Client

from mailsec.api.models import ApiToken


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """The rate limit counts in the configured (shared) cache: each test under a prefix of its
    own, so counts never carry over from another test or test run."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


def token_for(user, team, scope="write", **extra) -> str:
    _, secret = ApiToken.issue(team, user, f"{user.username} {scope}", scope, **extra)
    return secret


def api_client(secret: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {secret}"})
