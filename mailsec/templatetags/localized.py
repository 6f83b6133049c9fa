"""Numbers, percentages and moments in the reader's language: `1,234.5` and `99.2%` in
English, `1 234,5` and `99,2 %` in French (a non-breaking space before the sign, as French
writes it); a moment as `<time datetime="2026-12-05T10:00:00+01:00">2026-12-05 10:00</time>`
in the reader's time zone and date format.

Loaded as a template builtin (settings.TEMPLATES), so every template can write
`{{ count|number }}`, `{{ share|percent }}`, `{{ share|rate }}` (a dash for none) and
`{{ when|moment }}` without `{% load %}`.
"""

from datetime import datetime
from functools import lru_cache

from django import template
from django.conf import settings
from django.utils import formats, translation
from django.utils.html import format_html

register = template.Library()

# Languages that set a space between a number and its percent sign.
SPACED_PERCENT = {"fr"}


@lru_cache(maxsize=64)
def _thousands(language: str) -> str | None:
    """The thousands separator of a language whose numbers are grouped by threes (None for
    any other grouping): Django's format settings, looked up once per language."""
    with translation.override(language):
        if formats.get_format("NUMBER_GROUPING", use_l10n=True) != 3:
            return None
        return formats.get_format("THOUSAND_SEPARATOR", use_l10n=True)


@register.filter
def number(value, decimals=None):
    """A count or a measure, grouped by thousands in the active language."""
    if value is None or value == "":
        return ""
    if type(value) is int and decimals is None:
        # A count, as Django's number_format writes it, without its four format lookups per
        # number: a chart of a year writes thousands.
        separator = _thousands(translation.get_language() or settings.LANGUAGE_CODE)
        if separator is not None:
            return f"{value:,}".replace(",", separator)
    try:
        decimal_pos = None if decimals is None else int(decimals)
    except (TypeError, ValueError):
        decimal_pos = None
    if isinstance(value, float) and decimal_pos is None:
        decimal_pos = 1
    if isinstance(value, float):
        # Django's number_format cuts a float's decimals (99.66 -> "99.6"): round them first.
        value = round(value, decimal_pos)
    return formats.number_format(value, decimal_pos, use_l10n=True, force_grouping=True)


@register.filter
def percent(value, decimals=1):
    """A share already in percent (99.2, not 0.992): `99.2%`, `99,2 %`."""
    if value is None or value == "":
        return ""
    shown = number(float(value), decimals)
    language = (translation.get_language() or "en").split("-")[0]
    return f"{shown}\xa0%" if language in SPACED_PERCENT else f"{shown}%"


@register.filter
def rate(value, decimals=1):
    """A share shown in a table: its percentage, or a muted dash when there is nothing to
    divide (no messages)."""
    if value is None or value == "":
        return format_html('<span class="muted">{}</span>', "\u2014")
    return percent(value, decimals)


@register.filter(expects_localtime=True)
def moment(value):
    """A datetime as a `<time>` element: the ISO form for machines, the language's short date
    and time for people, both in the reader's time zone (the filter gets the value already
    converted, as `date` does). Lists show 50 or 100 of them a page, mostly the same few
    report periods: the text of each is worked out once per language and wall time."""
    if not isinstance(value, datetime):
        return ""
    iso = value.isoformat()
    return _moment(translation.get_language() or "", iso)


@lru_cache(maxsize=4096)
def _moment(language: str, iso: str) -> str:
    # The ISO form holds the wall time and the offset, all the shown text depends on; the
    # language is active here (it is the caller's), and the formats are settings.
    text = formats.date_format(datetime.fromisoformat(iso), "SHORT_DATETIME_FORMAT")
    return format_html('<time datetime="{}">{}</time>', iso, text)
