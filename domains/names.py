"""Domain names as users type them, turned into the one form mailsec stores.

Stored form: lower case ASCII (IDN labels as punycode), no trailing dot. Shown form: Unicode.
Every refusal says why, in words a user can act on.
"""

import ipaddress
import re

import idna
from django.core.exceptions import ValidationError

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_INPUT_LENGTH = 1024
LDH_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
SELECTOR_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
# RFC 3490 3.1: these separate labels as "." does (ideographic, fullwidth and halfwidth full
# stops). Left in a label, IDNA would map them to "." inside it: "a\uff0eexample" became
# "a.example" only after the labels were counted, and "example.com\uff0e" kept a trailing dot.
LABEL_SEPARATORS = str.maketrans(dict.fromkeys("\u3002\uff0e\uff61", "."))


class DomainNameError(ValidationError):
    pass


def normalize_domain(raw: str) -> str:
    """Return the stored (ASCII) form of `raw`, or raise DomainNameError saying why not."""
    text = (raw or "").strip()
    if not text:
        raise DomainNameError("Enter a domain name.")
    if len(text) > MAX_INPUT_LENGTH:
        raise DomainNameError(f"A domain name may be at most {MAX_NAME_LENGTH} characters.")
    if "://" in text or "/" in text:
        raise DomainNameError("Enter a bare domain name such as example.com, not a URL.")
    if "@" in text:
        raise DomainNameError("Enter the domain only (example.com), not an e-mail address.")
    if _is_ip_literal(text):
        raise DomainNameError(f"{text} is an IP address, not a domain name.")
    if any(ch.isspace() for ch in text):
        raise DomainNameError("A domain name cannot contain spaces.")
    name = text.translate(LABEL_SEPARATORS).lower().removesuffix(".")
    labels = name.split(".")
    if "" in labels:
        raise DomainNameError(f"{text!r} has an empty label (two dots in a row, or a leading dot).")
    ascii_labels = [_ascii_label(label) for label in labels]
    name = ".".join(ascii_labels)
    if name == "localhost" or name.endswith(".localhost"):
        raise DomainNameError("localhost is not a mail domain on the internet.")
    if len(ascii_labels) == 1:
        raise DomainNameError(
            f"{text!r} is a single label: enter a full domain name such as example.com."
        )
    if len(name) > MAX_NAME_LENGTH:
        raise DomainNameError(
            f"A domain name may be at most {MAX_NAME_LENGTH} characters; this one has {len(name)}."
        )
    if ascii_labels[-1].isdigit():
        raise DomainNameError(f"The last label {ascii_labels[-1]!r} cannot be all digits.")
    return name


def display_domain(name: str) -> str:
    """The Unicode form of a stored name (falls back to the stored form)."""
    if "xn--" not in name:
        return name
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name


def normalize_selector(raw: str) -> str:
    """A DKIM selector (RFC 6376 3.1: dot-separated labels), lower case; DomainNameError (a
    ValidationError) says why not."""
    name = raw.strip().lower().removesuffix(".")
    if not name:
        raise DomainNameError("Empty DKIM selector.")
    if name.endswith("._domainkey") or "._domainkey." in name:
        raise DomainNameError(f"{raw!r}: give the selector only, without ._domainkey.")
    for label in name.split("."):
        if len(label) > MAX_LABEL_LENGTH or not SELECTOR_LABEL.match(label):
            raise DomainNameError(
                f"{raw!r} is not a valid DKIM selector: use letters, digits, '-' and '_'."
            )
    if len(name) > MAX_NAME_LENGTH // 2:
        raise DomainNameError(f"{raw!r} is too long for a DKIM selector.")
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
                f"{label!r} is not a valid internationalised label: {exc}"
            ) from None
        if "." in encoded:  # UTS 46 maps a few characters to ones with a dot (U+2488 is "1.")
            raise DomainNameError(f"{label!r} is not a valid label: it holds a full stop.")
        return encoded
    if len(label) > MAX_LABEL_LENGTH:
        raise DomainNameError(
            f"The label {label[:20]}... has {len(label)} characters; at most "
            f"{MAX_LABEL_LENGTH} are allowed."
        )
    if not LDH_LABEL.match(label):
        raise DomainNameError(
            f"The label {label!r} is invalid: use letters, digits and hyphens, "
            "not starting or ending with a hyphen."
        )
    if label.startswith("xn--"):
        try:
            idna.decode(label)
        except idna.IDNAError as exc:
            raise DomainNameError(f"The label {label!r} is not valid punycode: {exc}") from None
    elif label[2:4] == "--":
        raise DomainNameError(f"The label {label!r} has '--' in the third and fourth places.")
    return label
