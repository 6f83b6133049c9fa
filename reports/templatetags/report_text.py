"""Stored report texts in the reader's language: `{% load report_text %}{{ text|shown_error }}`."""

from django import template

from reports import reasons, uploads

register = template.Library()


@register.filter
def shown_error(text):
    """A stored (English) error or refusal reason, or a mailbox test step's name or detail,
    in the reader's language when it is a known one; any other text as it is."""
    own = uploads.shown_error(text)
    return own if own != text else reasons.shown(text)
