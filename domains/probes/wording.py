"""The probes' own sentences (evidence of a login in the clear, of a relay, why a chain is not
trusted, why DANE or a PTR was not judged), read back as Messages so that a finding's evidence
shows them in the reader's language. The probes store them in English (ProbeResult, the server
summaries, the JSON outputs): worded() recognises a stored sentence by its template and gives a
Message whose English is that sentence, byte for byte. What it does not recognise (a server's
reply, OpenSSL's or a library's reason) stays as it is: data.
"""

from django.utils.translation import gettext_noop

from domains.messages import Message, msg, read_back

# In the order they are tried: a template that wraps another one first.
TEMPLATES = [
    gettext_noop("%(evidence)s (without TLS, which failed)"),
    gettext_noop("not tested: a lookup it needs (TLSA, or DNSSEC of a zone) failed"),
    gettext_noop("not tested: %(error)s"),
    gettext_noop("TLS is offered but refused: %(reply)s"),
    gettext_noop("EHLO before TLS lists %(auth)s"),
    gettext_noop("CAPABILITY before TLS lacks LOGINDISABLED: LOGIN is accepted in the clear"),
    gettext_noop("CAPA before TLS lists USER: the password is accepted in the clear"),
    gettext_noop("no %(command)s offered: any login crosses the network in the clear"),
    gettext_noop("MAIL FROM:<%(address)s> answered %(reply)s"),
    gettext_noop("RCPT TO:<%(address)s> answered %(reply)s"),
    gettext_noop("the certificate names no host in subjectAltName (RFC 5280, RFC 6125)"),
    gettext_noop("no trusted certificates to check against: %(error)s"),
    gettext_noop("could not look up the PTR or its names: %(error)s"),
    gettext_noop("no STARTTLS: DANE senders do not deliver without TLS"),
]

# The lines of a DANE mismatch (domains/probes/dane.py), after "<TLSA name>: ", joined by "; ".
DANE_LINES = [
    gettext_noop("%(record)s (%(usage)s): matches no certificate served"),
    gettext_noop("%(record)s: matches certificate %(index)s, not linked to the leaf"),
    gettext_noop("%(record)s: unusable for SMTP (RFC 7672 3.1.3)"),
    gettext_noop("no certificate was served (no TLS)"),
]

# What a failed optional lookup leaves untested (the checks' `ctx.dns.optional(...)`), shown
# in the evidence of a partly failed lookup.
VOIDS = [
    gettext_noop("FCrDNS of %(address)s (%(host)s) not tested"),
    gettext_noop("SPF beyond %(trail)s not evaluated"),
    gettext_noop("SPF term %(trail)s not evaluated (void lookups not fully counted)"),
    gettext_noop("whether %(target)s accepts reports for %(domain)s not checked"),
    gettext_noop("%(rdtype)s of %(host)s not probed"),
    gettext_noop("DANE of %(host)s:%(port)s not tested"),
    gettext_noop("DKIM selector %(selector)s not probed"),
    gettext_noop("_domainkey.%(domain)s unknown, so every selector probed"),
]

# Arguments that may hold one of the sentences above in turn.
_NESTED = ("evidence", "error")


def _match(text: str, templates: list[str]) -> Message | None:
    found = read_back(text, templates)
    if found is None:
        return None
    template, values = found
    return msg(
        template, **{name: worded(v) if name in _NESTED else v for name, v in values.items()}
    )


def worded(text: str) -> Message | str:
    """A probe's stored sentence as a Message (English unchanged), else the text as it is."""
    return _match(text or "", TEMPLATES) or text


def dane_worded(text: str) -> Message | str:
    """A DANE verdict's reason (the server summary's dane_detail) as a Message."""
    message = _match(text or "", TEMPLATES)
    if message:
        return message
    name, sep, rest = (text or "").partition(": ")
    if not sep or not name.startswith("_") or " " in name:
        return text
    parts = [_match(line, DANE_LINES) for line in rest.split("; ")]
    if not all(parts):
        return text
    return msg(gettext_noop("%(name)s: %(lines)s"), name=name, lines=parts)


def void_worded(text: str) -> Message | str:
    """What a failed optional lookup voids, as a Message (English unchanged)."""
    return _match(text or "", VOIDS) or text
