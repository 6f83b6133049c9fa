import pytest
from django.core.exceptions import ValidationError

from domains.names import DomainNameError, display_domain, normalize_domain, normalize_selector


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("example.com", "example.com"),
        ("  Example.COM.  ", "example.com"),
        ("mail.sub.example.co.uk", "mail.sub.example.co.uk"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("a-b.example", "a-b.example"),
        ("1example.com", "1example.com"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
        (".".join(["a" * 49] * 5) + ".com", ".".join(["a" * 49] * 5) + ".com"),  # 253
    ],
)
def test_normalises(raw, stored):
    assert normalize_domain(raw) == stored


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "Enter a domain name"),
        ("   ", "Enter a domain name"),
        ("192.0.2.1", "IP address"),
        ("2001:db8::1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("localhost", "localhost"),
        ("LOCALHOST.", "localhost"),
        ("mail.localhost", "localhost"),
        ("example", "single label"),
        ("com.", "single label"),
        (".".join(["a" * 50] * 5) + ".com", "at most 253"),
        ("x" * 64 + ".com", "at most 63"),
        ("-bad.example", "invalid"),
        ("bad-.example", "invalid"),
        ("under_score.example", "invalid"),
        ("sp ace.example", "spaces"),
        ("a..example", "empty label"),
        (".example.com", "empty label"),
        ("https://example.com/", "not a URL"),
        ("postmaster@example.com", "not an e-mail address"),
        ("example.123", "all digits"),
        ("ab--cd.example", "third and fourth"),
        ("xn--zz.example", "punycode"),
        ("☃.example", "internationalised"),
        ("x" * 5000, "at most 253"),
    ],
)
def test_refuses_with_a_reason(raw, reason):
    with pytest.raises(DomainNameError) as caught:
        normalize_domain(raw)
    assert reason in caught.value.messages[0]


def test_shows_unicode():
    assert display_domain("xn--bcher-kva.de") == "bücher.de"
    assert display_domain("example.com") == "example.com"
    assert display_domain("xn--zz.example") == "xn--zz.example"  # not valid punycode


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("Selector1", "selector1"), ("s1.eu", "s1.eu"), ("k_2", "k_2"), ("2048-a", "2048-a")],
)
def test_selectors(raw, stored):
    assert normalize_selector(raw) == stored


@pytest.mark.parametrize("raw", ["", "sel ector", "-x", "s1._domainkey", "a..b", "x" * 64, "ä"])
def test_bad_selectors(raw):
    with pytest.raises(ValidationError):
        normalize_selector(raw)
