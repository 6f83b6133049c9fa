"""Schemathesis, driven by the live schema (/api/v1/schema/, as the app serves it), sends
generated requests to every operation through the app's own WSGI handler, with a read-write
token of a team that has data: no answer may be a 500, and every documented answer must match
its schema. A few examples per operation keep it under a minute.

The examples are the same on every run (hypothesis derandomized), so that a submission's CI is not
decided by the draw; `MAILSEC_FUZZ=random pytest tests/api/test_schemathesis.py` explores new
ones (it found five real bugs that way), to be run by hand now and then."""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.api.conftest import token_for
from tests.api.world import world_of

EXAMPLES = 15
RANDOM = os.environ.get("MAILSEC_FUZZ") == "random"


@pytest.fixture
def token(acme, alice, bob, acme_domain):
    world_of(acme, acme_domain, alice)
    return token_for(alice, acme, "write")


@pytest.fixture
def keep_the_test_connection():
    """Django closes old database connections as a request starts and ends; the test's
    connection holds the test's transaction (Django's test client disconnects the same)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def api_schema(token, settings, keep_the_test_connection):
    settings.MAILSEC_API_RATE = 1_000_000  # the throttle has a test of its own
    return schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json",
        get_wsgi_application(),
        headers={"Authorization": f"Bearer {token}"},
    )


def test_no_server_errors_and_answers_match_the_schema(api_schema, token):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=not RANDOM,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        try:
            check()
        except Exception as exc:  # every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
