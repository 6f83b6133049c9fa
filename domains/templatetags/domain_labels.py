"""Words of the domain pages stored as codes (a finding's severity): shown in the reader's
language. The stored codes and the API keep the English ones."""

from django import template
from django.utils.translation import pgettext_lazy

register = template.Library()

SEVERITY_LABELS = {
    "critical": pgettext_lazy("severity", "critical"),
    "high": pgettext_lazy("severity", "high"),
    "medium": pgettext_lazy("severity", "medium"),
    "low": pgettext_lazy("severity", "low"),
    "info": pgettext_lazy("severity", "info"),
}


@register.filter
def severity_label(code: str) -> str:
    """critical -> "critique" in French; an unknown code as it is."""
    return SEVERITY_LABELS.get(str(code), code)
