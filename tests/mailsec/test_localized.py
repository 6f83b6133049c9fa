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


@pytest.mark.parametrize("language", ["en", "fr", "de", "hi", "en-in"])
def test_a_count_is_written_as_djangos_number_format_writes_it(language):
    # number() writes integers itself (thousands of them on a chart): the same text, in
    # languages grouping by threes and (Hindi, Indian English) not.
    from django.utils import formats

    from mailsec.templatetags.localized import number

    with translation.override(language):
        for value in [0, 7, -7, 999, 1000, -1000, 12345, 123456789, -98765432, 10**15, True]:
            django = formats.number_format(value, None, use_l10n=True, force_grouping=True)
            assert number(value) == django, (language, value)


def test_number_with_decimals():
    assert shown("{{ n|number:2 }}", "fr", n=1234.5) == f"1{NBSP}234,50"
    assert shown("{{ n|number:0 }}", "en", n=1234.5) == "1,234"  # rounded half to even


def test_percent():
    assert shown("{{ r|percent }}", "en", r=99.2) == "99.2%"
    assert shown("{{ r|percent }}", "fr", r=99.2) == f"99,2{NBSP}%"
    assert shown("{{ r|percent:0 }}", "fr", r=Decimal("12.5")) == f"12{NBSP}%"
    assert shown("{{ r|percent }}", "fr", r=None) == ""


def test_moment_is_a_time_element_in_the_readers_zone_and_language():
    from datetime import UTC, datetime

    from django.utils import timezone

    when = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    with timezone.override("Europe/Paris"):
        assert shown("{{ w|moment }}", "en", w=when) == (
            '<time datetime="2026-12-06T00:30:00+01:00">2026-12-06 00:30</time>'
        )
        french = shown("{{ w|moment }}", "fr", w=when)
    assert french == '<time datetime="2026-12-06T00:30:00+01:00">06/12/2026 00:30</time>'
    # The same instant for a reader in another zone: its own wall time, not a remembered one.
    with timezone.override("America/New_York"):
        assert shown("{{ w|moment }}", "en", w=when) == (
            '<time datetime="2026-12-05T18:30:00-05:00">2026-12-05 18:30</time>'
        )
    assert shown("{{ w|moment }}", "en", w=None) == ""
    # Exactly what the date filter writes, both forms.
    with timezone.override("Asia/Kolkata"), translation.override("fr"):
        expected = Template(
            "<time datetime=\"{{ w|date:'c' }}\">{{ w|date:'SHORT_DATETIME_FORMAT' }}</time>"
        ).render(Context({"w": when}))
    assert shown_in("Asia/Kolkata", "fr", when) == expected


def shown_in(zone: str, language: str, when) -> str:
    from django.utils import timezone

    with timezone.override(zone):
        return shown("{{ w|moment }}", language, w=when)


def test_rate_is_the_percentage_or_a_muted_dash():
    assert shown("{{ r|rate }}", "en", r=99.66) == "99.7%"
    assert shown("{{ r|rate }}", "fr", r=12.5) == f"12,5{NBSP}%"
    assert shown("{{ r|rate }}", "en", r=None) == '<span class="muted">\u2014</span>'
    assert shown("{{ missing|rate }}", "en") == '<span class="muted">\u2014</span>'
