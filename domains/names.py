"""Domain names as users type them, turned into the one form mailsec stores.

Stored form: lower case ASCII (IDN labels as punycode), no trailing dot. Shown form: Unicode,
with the punycode beside it whenever the Unicode form could pass for another name (see
`lookalike_reason`). Every refusal says why, in words a user can act on.
"""

import ipaddress
import re
from functools import cache

import idna
from confusable_homoglyphs import categories, confusables
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from publicsuffixlist import PublicSuffixList

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_INPUT_LENGTH = 1024
LDH_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
SELECTOR_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
# RFC 3490 3.1: these separate labels as "." does (ideographic, fullwidth and halfwidth full
# stops). Left in a label, IDNA would map them to "." inside it: "a\uff0eexample" became
# "a.example" only after the labels were counted, and "example.com\uff0e" kept a trailing dot.
LABEL_SEPARATORS = str.maketrans(dict.fromkeys("\u3002\uff0e\uff61", "."))
# Scripts a single label may mix without looking like a spoof: UTS #39's "highly restrictive"
# level (5.2), which allows Latin with the scripts Chinese, Japanese and Korean are written in.
ALLOWED_SCRIPT_MIXES = [
    {"LATIN", "HAN", "HIRAGANA", "KATAKANA"},
    {"LATIN", "HAN", "BOPOMOFO"},
    {"LATIN", "HAN", "HANGUL"},
]
NEUTRAL_SCRIPTS = {"COMMON", "INHERITED"}  # digits, '-', combining marks
ASCII_LOOKALIKE = re.compile(r"^[a-z0-9]$")


@cache
def public_suffixes() -> PublicSuffixList:
    """The Public Suffix List as shipped in the `publicsuffixlist` package (ICANN and private
    sections; no download at run time)."""
    return PublicSuffixList()


class DomainNameError(ValidationError):
    pass


def normalize_domain(raw: str) -> str:
    """Return the stored (ASCII) form of `raw`, or raise DomainNameError saying why not."""
    text = (raw or "").strip()
    if not text:
        raise DomainNameError(_("Enter a domain name."))
    if len(text) > MAX_INPUT_LENGTH:
        raise DomainNameError(
            _("A domain name may be at most %(most)s characters."),
            params={"most": MAX_NAME_LENGTH},
        )
    if "://" in text or "/" in text:
        raise DomainNameError(_("Enter a bare domain name such as example.com, not a URL."))
    if "@" in text:
        raise DomainNameError(_("Enter the domain only (example.com), not an e-mail address."))
    if _is_ip_literal(text):
        raise DomainNameError(
            _("%(text)s is an IP address, not a domain name."), params={"text": text}
        )
    if any(ch.isspace() for ch in text):
        raise DomainNameError(_("A domain name cannot contain spaces."))
    name = text.translate(LABEL_SEPARATORS).lower().removesuffix(".")
    labels = name.split(".")
    if "" in labels:
        raise DomainNameError(
            _("%(text)s has an empty label (two dots in a row, or a leading dot)."),
            params={"text": repr(text)},
        )
    ascii_labels = [_ascii_label(label) for label in labels]
    name = ".".join(ascii_labels)
    if name == "localhost" or name.endswith(".localhost"):
        raise DomainNameError(_("localhost is not a mail domain on the internet."))
    if len(ascii_labels) == 1:
        raise DomainNameError(
            _("%(text)s is a single label: enter a full domain name such as example.com."),
            params={"text": repr(text)},
        )
    if len(name) > MAX_NAME_LENGTH:
        raise DomainNameError(
            _("A domain name may be at most %(most)s characters; this one has %(length)s."),
            params={"most": MAX_NAME_LENGTH, "length": len(name)},
        )
    if ascii_labels[-1].isdigit():
        raise DomainNameError(
            _("The last label %(label)s cannot be all digits."),
            params={"label": repr(ascii_labels[-1])},
        )
    if public_suffixes().is_public(name):
        raise DomainNameError(
            _(
                "%(name)s is a public suffix: anyone can register names under it (such as "
                "example.%(name)s), so it is nobody's mail domain. Enter your own domain."
            ),
            params={"name": unicode_domain(name)},
        )
    return name


def org_domain(name: str) -> str:
    """The organisational domain of a stored name (RFC 7489 3.2: the public suffix plus one
    label), or the name itself when it has none."""
    return public_suffixes().privatesuffix(name.lower().rstrip(".")) or name


def unicode_domain(name: str) -> str:
    """The Unicode form of a stored name (falls back to the stored form)."""
    if "xn--" not in name:
        return name
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name


def display_domain(name: str) -> str:
    """How a stored name is shown: Unicode, with the punycode beside it when the Unicode form
    could pass for another name: "<unicode> (xn--...)"."""
    shown = unicode_domain(name)
    if shown != name and lookalike_reason(shown):
        return f"{shown} ({name})"
    return shown


def lookalike_reason(shown: str) -> str:
    """Why a Unicode name could be mistaken for another one, or "".

    A label is suspicious when it mixes scripts beyond UTS #39's highly restrictive level
    (a Cyrillic "a" among Latin letters), or when every character in it is ASCII or looks like an
    ASCII letter or digit (an all-Cyrillic "coco"), after Unicode's confusables data
    (the `confusable_homoglyphs` package)."""
    for label in shown.split("."):
        if label.isascii():
            continue
        scripts = categories.unique_aliases(label) - NEUTRAL_SCRIPTS
        if len(scripts) > 1 and not any(scripts <= mix for mix in ALLOWED_SCRIPT_MIXES):
            return f"{label!r} mixes the {' and '.join(sorted(s.title() for s in scripts))} scripts"
        lookalike = "".join(_ascii_lookalike(ch) for ch in label)
        if len(lookalike) == len(label):
            return f"{label!r} looks like the ASCII {lookalike!r}"
    return ""


def _ascii_lookalike(ch: str) -> str:
    """The ASCII letter or digit `ch` is, or can be confused with; "" if none."""
    if ch.isascii():
        return ch
    found = confusables.is_confusable(ch, greedy=True, preferred_aliases=[]) or []
    glyphs = [h["c"].lower() for item in found for h in item["homoglyphs"]]
    return next((g for g in glyphs if ASCII_LOOKALIKE.match(g)), "")


def normalize_selector(raw: str) -> str:
    """A DKIM selector (RFC 6376 3.1: dot-separated labels), lower case; DomainNameError (a
    ValidationError) says why not."""
    name = raw.strip().lower().removesuffix(".")
    if not name:
        raise DomainNameError(_("Empty DKIM selector."))
    if name.endswith("._domainkey") or "._domainkey." in name:
        raise DomainNameError(
            _("%(raw)s: give the selector only, without ._domainkey."), params={"raw": repr(raw)}
        )
    for label in name.split("."):
        if len(label) > MAX_LABEL_LENGTH or not SELECTOR_LABEL.match(label):
            raise DomainNameError(
                _("%(raw)s is not a valid DKIM selector: use letters, digits, '-' and '_'."),
                params={"raw": repr(raw)},
            )
    if len(name) > MAX_NAME_LENGTH // 2:
        raise DomainNameError(
            _("%(raw)s is too long for a DKIM selector."), params={"raw": repr(raw)}
        )
    return name


def _is_ip_literal(text: str) -> bool:
    candidate = text.strip("[]").removesuffix(".")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _ascii_label(label: str) -> str:
    if not label.isascii():
        try:
            encoded = idna.encode(label, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise DomainNameError(
                _("%(label)s is not a valid internationalised label: %(error)s"),
                params={"label": repr(label), "error": exc},
            ) from None
        if "." in encoded:  # UTS 46 maps a few characters to ones with a dot (U+2488 is "1.")
            raise DomainNameError(
                _("%(label)s is not a valid label: it holds a full stop."),
                params={"label": repr(label)},
            )
        return encoded
    if len(label) > MAX_LABEL_LENGTH:
        raise DomainNameError(
            _("The label %(label)s... has %(length)s characters; at most %(most)s are allowed."),
            params={"label": label[:20], "length": len(label), "most": MAX_LABEL_LENGTH},
        )
    if not LDH_LABEL.match(label):
        raise DomainNameError(
            _(
                "The label %(label)s is invalid: use letters, digits and hyphens, not starting "
                "or ending with a hyphen."
            ),
            params={"label": repr(label)},
        )
    if label.startswith("xn--"):
        try:
            idna.decode(label)
        except idna.IDNAError as exc:
            raise DomainNameError(
                _("The label %(label)s is not valid punycode: %(error)s"),
                params={"label": repr(label), "error": exc},
            ) from None
    elif label[2:4] == "--":
        raise DomainNameError(
            _("The label %(label)s has '--' in the third and fourth places."),
            params={"label": repr(label)},
        )
    return label
