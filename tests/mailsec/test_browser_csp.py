"""The main pages in a real browser (Debian's Chromium through Playwright) under the
Content-Security-Policy: none of them makes the browser refuse a script, a style or an image.

Chromium reports each refusal on the console ("Refused to apply inline style ..."), and fires
a `securitypolicyviolation` event that mailsec's own script cannot hide."""

import pytest

from domains.models import Domain
from tests.conftest import make_user
from tests.domains.test_alerts import make_run
from tests.test_browser import chromium_page, sign_in

PAGES = [
    "/domains/",
    "/domains/add/",
    "/domains/{domain}/",
    "/domains/{domain}/edit/",
    "/reports/",
    "/reports/upload/",
    "/reports/mailboxes/",
    "/settings/members/",
    "/settings/sign-in/",
    "/settings/channels/",
    "/settings/mailboxes/",
    "/settings/audit/",
    "/account/two-factor/",
    "/account/password/",
    "/admin/",
    "/admin/domains/domain/",
    "/admin/domains/domain/{domain}/change/",
    "/admin/axes/accessattempt/",
]


@pytest.mark.django_db(transaction=True)
def test_main_pages_raise_no_csp_violation(live_server, alice, acme):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    domain = Domain.objects.create(organization=acme, name="example.com")
    make_run(domain)
    make_user("bob")
    base = live_server.url
    refused, headers = [], {}
    with chromium_page() as page:
        page.on(
            "console",
            lambda message: (
                refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text or "Refused to" in message.text
                else None
            ),
        )
        sign_in(page, base)
        for path in PAGES:
            response = page.goto(base + path.format(domain=domain.pk))
            assert response.status == 200, path
            headers[path] = response.headers.get("content-security-policy", "")
            page.wait_for_load_state("load")
        # The QR code of the two-factor set-up is inline SVG: it must show under the policy too.
        page.goto(f"{base}/account/two-factor/")
        page.click("main button:text-is('Set up an authenticator app')")
        page.wait_for_selector("svg.segno")
        assert page.locator("svg.segno").bounding_box()["width"] > 100
    assert refused == []
    for path, policy in headers.items():
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
