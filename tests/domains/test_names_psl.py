"""Names a user cannot own (public suffixes) are refused; IDNs whose Unicode could pass for
another name are always shown with their punycode (issue 11, item 11)."""

import pytest

from domains.models import Domain
from domains.names import (
    DomainNameError,
    display_domain,
    lookalike_reason,
    normalize_domain,
    unicode_domain,
)
from tests.conftest import client_for

# Cyrillic er, a and u among Latin letters: reads as "paypal".
MIXED = "\u0440\u0430\u0443\u0440\u0430l.example"
MIXED_ASCII = normalize_domain(MIXED)
# Cyrillic only, but every letter looks like a Latin one: reads as "coco".
WHOLE_SCRIPT = "\u0441\u043e\u0441\u043e.example"
WHOLE_SCRIPT_ASCII = normalize_domain(WHOLE_SCRIPT)


@pytest.mark.parametrize(
    "name",
    [
        "co.uk",  # ICANN section
        "CO.UK.",
        "github.io",  # private section
        "blogspot.com",
        "com.au",
        "xn--55qx5d.cn",  # 公司.cn, an IDN suffix under .cn
        "公司.cn",
    ],
)
def test_a_public_suffix_is_refused(name):
    with pytest.raises(DomainNameError) as caught:
        normalize_domain(name)
    assert "is a public suffix" in caught.value.messages[0]


@pytest.mark.parametrize(
    "name", ["example.co.uk", "someone.github.io", "mail.example.com.au", "good.test"]
)
def test_names_registered_under_a_suffix_are_fine(name):
    assert normalize_domain(name) == name


@pytest.mark.parametrize(
    ("shown", "reason"),
    [
        (MIXED, "mixes the Cyrillic and Latin scripts"),
        (WHOLE_SCRIPT, "looks like the ASCII 'coco'"),
        ("\u0455\u0441\u043e\u0440\u0435.example", "looks like the ASCII 'scope'"),  # Cyrillic
        ("\u0131bm.example", "looks like the ASCII 'ibm'"),  # Latin dotless i
        ("g\u03bf\u03bfgle.example", "mixes the Greek and Latin scripts"),  # omicrons,
    ],
)
def test_lookalikes_say_why(shown, reason):
    assert reason in lookalike_reason(shown)


@pytest.mark.parametrize(
    "shown",
    [
        "bücher.example",  # Latin with a diacritic: no ASCII letter looks like ü
        "москва.рф",  # Cyrillic, but м, к and в look like no ASCII letter
        "例え.テスト",  # Han with Hiragana, and Katakana: allowed mixes (UTS #39)
        "日本語abc.example",  # Han with Latin: allowed too
        "한국어.example",
    ],
)
def test_ordinary_idns_are_not_lookalikes(shown):
    assert lookalike_reason(shown) == ""
    assert display_domain(normalize_domain(shown)) == shown


def test_a_lookalike_is_displayed_with_its_punycode():
    assert display_domain(MIXED_ASCII) == f"{MIXED} ({MIXED_ASCII})"
    assert display_domain(WHOLE_SCRIPT_ASCII) == f"{WHOLE_SCRIPT} ({WHOLE_SCRIPT_ASCII})"
    assert unicode_domain(MIXED_ASCII) == MIXED


def test_the_add_form_refuses_a_public_suffix(alice):
    response = client_for(alice).post("/domains/add/", {"names": "co.uk\ngithub.io"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "co.uk is a public suffix" in page
    assert "github.io is a public suffix" in page
    assert not Domain.objects.exists()


def test_a_lookalike_shows_its_punycode_in_the_add_results_and_on_every_page(alice):
    client = client_for(alice)
    # One name refused, so the results page is shown rather than a redirect.
    response = client.post("/domains/add/", {"names": f"{MIXED}\n{WHOLE_SCRIPT}\nco.uk"})
    page = response.content.decode()
    assert f"{MIXED} ({MIXED_ASCII})</a>" in page
    assert f"{WHOLE_SCRIPT} ({WHOLE_SCRIPT_ASCII})</a>" in page
    domain = Domain.objects.get(name=MIXED_ASCII)
    listing = client.get("/domains/").content.decode()
    assert f'{MIXED}</a> <small class="status-warn lookalike"' in listing
    assert f"{MIXED_ASCII}<span" in listing
    detail = client.get(f"/domains/{domain.pk}/").content.decode()
    assert f'<h1>{MIXED} <small class="status-warn lookalike"' in detail
    assert f"<title>{MIXED} ({MIXED_ASCII})" in detail
    for path in (f"/domains/{domain.pk}/edit/", f"/reports/domain/{domain.pk}/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert f"{MIXED} ({MIXED_ASCII})" in response.content.decode(), path


def test_an_ordinary_idn_is_shown_in_unicode_with_the_punycode_muted(alice):
    client = client_for(alice)
    client.post("/domains/add/", {"names": "bücher.example"})
    listing = client.get("/domains/").content.decode()
    assert 'bücher.example</a> <small class="muted">xn--bcher-kva.example</small>' in listing
