"""Numbers and percentages in the reader's language: `1,234.5` and `99.2%` in English,
`1 234,5` and `99,2 %` in French (a non-breaking space before the sign, as French writes it).

Loaded as a template builtin (settings.TEMPLATES), so every template can write
`{{ count|number }}` and `{{ rate|percent }}` without `{% load %}`.
"""

from django import template
from django.utils import formats, translation

register = template.Library()

# Languages that set a space between a number and its percent sign.
SPACED_PERCENT = {"fr"}


@register.filter
def number(value, decimals=None):
    """A count or a measure, grouped by thousands in the active language."""
    if value is None or value == "":
        return ""
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
