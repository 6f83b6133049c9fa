"""In a real Chromium: make a token on the settings page, then use it from a plain HTTP
client; and the API's docs page renders Swagger UI from the app's own files under the CSP."""

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from domains.models import Domain
from mailsec.api.models import ApiToken
from tests.test_browser import chromium_page, sign_in


def call(base: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 (the live server on loopback)
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return response.status, json.loads(response.read())


@pytest.mark.django_db(transaction=True)
def test_a_token_made_on_the_settings_page_works_from_a_script(live_server, alice, acme):
    Domain.objects.create(organization=acme, name="acme.example")
    base = live_server.url
    with chromium_page() as page:
        sign_in(page, base)
        page.goto(f"{base}/settings/")
        page.click("nav.subnav a:text-is('API tokens')")
        page.wait_for_url(f"{base}/settings/tokens/")
        page.fill("input[name=name]", "provisioning")
        page.select_option("select[name=scope]", "write")
        page.click("#token-add button[type=submit]")
        secret = page.locator("#token-secret").inner_text().strip()
        listed = page.locator("table.tokens").inner_text()
        page.reload()  # shown once: a reload shows it no more
        after = page.locator("main").inner_text()

    assert secret.startswith("mailsec_") and secret not in after
    assert "provisioning" in listed and "Read and write" in listed
    status, listing = call(base, "/api/v1/domains/", secret)
    assert status == 200 and [d["name"] for d in listing["results"]] == ["acme.example"]
    status, added = call(base, "/api/v1/domains/", secret, {"names": ["new.example"]})
    assert status == 201 and [d["name"] for d in added["added"]] == ["new.example"]
    assert ApiToken.objects.get(name="provisioning").last_used_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_docs_page_renders_under_the_csp(live_server, alice):
    base = live_server.url
    violations = []
    with chromium_page() as page:
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text and violations.append(message.text)
            ),
        )
        sign_in(page, base)
        page.goto(f"{base}/api/v1/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("mailsec API")
        expect(page.locator(".opblock-tag-section").first).to_be_visible()
        operations = page.locator(".opblock").count()
    assert operations >= 25
    assert violations == []
