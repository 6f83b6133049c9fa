"""Uploading report files: several at once, each dropped as soon as it (or the upload as a
whole) passes the size cap."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.template.defaultfilters import filesizeformat
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop


def size_text(size: int) -> str:
    """A size as people write it: Django's filesizeformat without a trailing ".0" ("100 MB",
    not "100.0 MB"; "1.5 MB" stays)."""
    return re.sub(r"[.,]0(?=\D)", "", str(filesizeformat(size)))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field whose cleaned value is the list of every file chosen."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        single = super().clean
        return [single(upload, initial) for upload in files if upload]


class UploadForm(forms.Form):
    files = MultipleFileField(
        label=gettext_lazy("Report files"),
        required=False,
        # An empty file is a refused input like any other, listed with its reason.
        allow_empty_file=True,
        help_text=gettext_lazy(
            "DMARC aggregate reports (XML, gzip or zip), SMTP TLS reports (JSON), "
            "failure reports, or whole report e-mails (.eml, mbox). Choose several at once."
        ),
    )

    def __init__(self, *args, oversized=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.oversized = list(oversized)

    def clean(self):
        data = super().clean()
        if not data.get("files") and not self.oversized and not self.errors:
            raise ValidationError(_("Choose at least one report file."))
        return data


class CappedUploadHandler(FileUploadHandler):
    """Stops receiving a file as soon as it passes `limit` bytes, or as soon as the files kept
    from one upload pass `limit` together, so an upload never fills the memory or the disk;
    remembers the files it dropped and why.

    It runs before Django's own handlers and only counts. It raises at a data chunk, never in
    new_file(): by then every handler holds the current file, which Django then discards, and
    not a finished earlier one.
    """

    def __init__(self, request=None, *, limit: int):
        super().__init__(request)
        self.limit = limit
        self.oversized: list[tuple[str, str]] = []  # (file name, why it was not read)
        self._received = 0  # of the current file
        self._kept = 0  # of the files received whole

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        declared = self.content_length or 0
        if self._received > self.limit or declared > self.limit:
            self._drop(gettext_noop("Larger than %(size)s: not read."))
        if self._kept + self._received > self.limit:
            self._drop(gettext_noop("The files of one upload may hold %(size)s in all: not read."))
        return raw_data

    def _drop(self, why: str):
        # Stored with the upload's results, so in English as every stored reason is.
        with translation.override("en"):
            self.oversized.append((self.file_name, why % {"size": size_text(self.limit)}))
        raise SkipFile

    def file_complete(self, file_size):
        self._kept += self._received
        return None


class AssignForm(forms.Form):
    """Staff: give the unclaimed reports of one domain to a team."""

    domain = forms.CharField(max_length=253)
    organization = forms.ModelChoiceField(
        queryset=None,
        label=gettext_lazy("Team"),
        empty_label=gettext_lazy("Choose the team that received them"),
    )

    def __init__(self, *args, **kwargs):
        from domains.models import Organization

        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = Organization.objects.all()
