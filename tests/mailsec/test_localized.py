"""Numbers and percentages in the reader's language (mailsec/templatetags/localized.py), as
every template writes them: `{{ n|number }}`, `{{ rate|percent }}`, no {% load %} needed."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

NBSP = "\N{NO-BREAK SPACE}"


def shown(source: str, language: str, **values) -> str:
    with translation.override(language):
        return Template(source).render(Context(values))


@pytest.mark.parametrize(
    ("value", "english", "french"),
    [
        (1234.5, "1,234.5", f"1{NBSP}234,5"),
        (1234567, "1,234,567", f"1{NBSP}234{NBSP}567"),
        (Decimal("42694"), "42,694", f"42{NBSP}694"),
        (0, "0", "0"),
        (None, "", ""),
    ],
)
def test_number(value, english, french):
    assert shown("{{ n|number }}", "en", n=value) == english
    assert shown("{{ n|number }}", "fr", n=value) == french


def test_number_with_decimals():
    assert shown("{{ n|number:2 }}", "fr", n=1234.5) == f"1{NBSP}234,50"
    assert shown("{{ n|number:0 }}", "en", n=1234.5) == "1,234"  # rounded half to even


def test_percent():
    assert shown("{{ r|percent }}", "en", r=99.2) == "99.2%"
    assert shown("{{ r|percent }}", "fr", r=99.2) == f"99,2{NBSP}%"
    assert shown("{{ r|percent:0 }}", "fr", r=Decimal("12.5")) == f"12{NBSP}%"
    assert shown("{{ r|percent }}", "fr", r=None) == ""
