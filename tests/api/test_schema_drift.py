"""The checked-in schema (docs/openapi.yaml) is the one the app serves: a change of the API
shows in the diff of a pull request, and clients generated from the file stay true."""

import io
from pathlib import Path

import yaml
from django.core.management import call_command
from django.utils import timezone

from domains.alerts import build_payload
from domains.models import DomainEvent, EventKind
from mailsec.api.serializers import AlertPayloadSerializer

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def generated() -> str:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return out.getvalue()


def test_the_checked_in_schema_is_the_served_one(db):
    assert generated() == CHECKED_IN.read_text(), (
        "docs/openapi.yaml differs from the API: run `make openapi` and commit the file"
    )


def test_the_webhook_payload_is_a_component_of_the_schema(acme):
    schema = yaml.safe_load(CHECKED_IN.read_text())
    components = schema["components"]["schemas"]
    payload = build_payload(acme, [], subject="s")
    assert set(payload) == set(components["AlertPayload"]["properties"])
    assert set(AlertPayloadSerializer().fields) == set(components["AlertPayload"]["properties"])
    assert components["AlertPayload"]["properties"]["events"]["items"] == {
        "$ref": "#/components/schemas/AlertEvent"
    }


def test_a_real_webhook_body_matches_the_schema(acme, acme_domain):
    import jsonschema

    from tests.api.world import make_run

    run = make_run(acme_domain)
    event = DomainEvent.objects.create(
        domain=acme_domain,
        run=run,
        created_at=timezone.now(),
        kind=EventKind.GRADE_DROPPED,
        summary="Grade dropped from B to D",
        data={"before": "B", "after": "D"},
    )
    body = build_payload(acme, [event], subject="mailsec: acme.example grade B → D")
    schema = yaml.safe_load(CHECKED_IN.read_text())
    wrapper = {"$ref": "#/components/schemas/AlertPayload", "components": schema["components"]}
    jsonschema.validate(body, wrapper)
    assert body["events"][0]["url"].endswith(f"/domains/{acme_domain.pk}/")
