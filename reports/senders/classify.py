"""How a sender of a domain's mail is classified: pure, numbers and the team's mark in.

The rules (docs/senders.md says them for users), first match wins:

1. Marked "ours" by the team: *authorised* when aligned SPF or DKIM passes for most of its
   mail (more than MOST), else *failing authorised*: the thing to fix.
2. A forwarding service or mailing-list host (reports/data), or a sender that is not marked ours
   and whose mail passes aligned DKIM but not aligned SPF while no service is known for it
   (what forwarding does: the forwarder's address is not in the domain's SPF, the DKIM
   signature survives): *forwarded*. A sender marked "not ours" can only be forwarded this way.
3. Marked "not ours": *suspicious*, whatever it passes.
4. Passing for most of its mail: *authorised*.
5. Anything else (unknown, failing both for most of its mail): *suspicious*.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.utils.translation import pgettext_lazy

MOST = 0.5  # "most of its mail": more than this share


class Classification(StrEnum):
    AUTHORISED = "authorised"
    FORWARDED = "forwarded"
    FAILING_AUTHORISED = "failing_authorised"
    SUSPICIOUS = "suspicious"

    @property
    def label(self) -> str:
        """In English, stable: the command line, the CSV and the JSON say it."""
        return self.value.replace("_", " ").capitalize()

    @property
    def display(self) -> str:
        """In the reader's language: the pages say it."""
        return str(DISPLAY[self])


DISPLAY = {
    Classification.AUTHORISED: pgettext_lazy("sender", "Authorised"),
    Classification.FORWARDED: pgettext_lazy("sender", "Forwarded"),
    Classification.FAILING_AUTHORISED: pgettext_lazy("sender", "Failing authorised"),
    Classification.SUSPICIOUS: pgettext_lazy("sender", "Suspicious"),
}


@dataclass(frozen=True)
class Numbers:
    messages: int
    dmarc_pass: int
    spf_aligned: int
    dkim_aligned: int


def _most(part: int, whole: int) -> bool:
    return whole > 0 and part / whole > MOST


def classify(
    numbers: Numbers, *, mark: str | None, known_service: bool, forwarding_service: bool
) -> Classification:
    """`mark`: "ours", "not_ours" or None (SenderVerdict values)."""
    passes = _most(numbers.dmarc_pass, numbers.messages)
    if mark == "ours":
        return Classification.AUTHORISED if passes else Classification.FAILING_AUTHORISED
    dkim_only = _most(numbers.dkim_aligned, numbers.messages) and not _most(
        numbers.spf_aligned, numbers.messages
    )
    if forwarding_service or (dkim_only and not known_service):
        return Classification.FORWARDED
    if mark == "not_ours":
        return Classification.SUSPICIOUS
    return Classification.AUTHORISED if passes else Classification.SUSPICIOUS
