"""Stored report texts in the reader's language: `{% load report_text %}{{ text|shown_error }}`."""

from django import template

from reports import uploads

register = template.Library()


@register.filter
def shown_error(text):
    """An upload's stored (English) error, translated when it is one of the upload's own."""
    return uploads.shown_error(text)
