"""Stored English texts of the reports side, shown in the reader's language.

The parsers' refusal reasons (reports/ingest.py, reports/parsing/*) and the mailbox connection
test's steps (reports/mailbox.py, pop3.py, mailserver.py) are written in English where they
arise, and refusal reasons are stored so: `import_reports --json` and the API show them as they
are. The pages show them through shown(), which recognises each text by its English pattern
(the %(name)s parts are the variable ones, shown as data) and gives it in the active language.
A text no pattern knows is shown as it is: a new reason stays readable, in English.
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_noop

from domains.messages import read_back

# Placeholders named `reason` are themselves stored reasons, translated in turn.
NESTED = frozenset({"reason"})

PATTERNS = [
    # reports/ingest.py
    gettext_noop("not parsed yet"),
    gettext_noop("not parsed yet: its import was interrupted, it is being parsed again"),
    gettext_noop("its import was interrupted twice before it was parsed: import it again"),
    gettext_noop("refused before, not parsed again: %(reason)s"),
    gettext_noop("no report found in this input"),
    # reports/parsing/streams.py
    gettext_noop("decompressed size exceeds the %(size)s limit"),
    gettext_noop("corrupt %(what)s (%(error)s)"),
    gettext_noop("truncated gzip data"),
    gettext_noop("corrupt gzip data (%(error)s)"),
    # reports/parsing/unpack.py
    gettext_noop("more than %(count)s parts: the rest is not read"),
    gettext_noop("more than %(seconds)s s of work: the rest is not read"),
    gettext_noop("input size exceeds the %(size)s limit"),
    gettext_noop("cannot read the input (%(error)s)"),
    gettext_noop("the input is not a regular file"),
    gettext_noop("containers nested too deeply (more than %(count)s)"),
    gettext_noop("corrupt or truncated zip archive (%(error)s)"),
    gettext_noop("zip archive has %(members)s members, more than %(count)s"),
    gettext_noop("zip archive holds no files"),
    gettext_noop("zip archive directory is too large (%(size)s bytes)"),
    gettext_noop("corrupt zip member (%(error)s)"),
    gettext_noop("zip member is encrypted"),
    gettext_noop("zip member uses compression method %(method)s, which is not supported"),
    gettext_noop("decompressed size of all members exceeds the %(size)s limit"),
    gettext_noop(
        "an e-mail message of more than %(count)s MIME parts (a report message has a few)"
    ),
    gettext_noop("unreadable e-mail message (%(error)s)"),
    gettext_noop("no report found in this e-mail message"),
    gettext_noop("unreadable e-mail part (%(error)s)"),
    gettext_noop("mbox holds no messages"),
    gettext_noop("empty input"),
    gettext_noop("%(container)s is empty"),
    gettext_noop("PNG image, not a report"),
    gettext_noop("JPEG image, not a report"),
    gettext_noop("GIF image, not a report"),
    gettext_noop("PDF document, not a report"),
    gettext_noop("bzip2-compressed data, not a report"),
    gettext_noop("xz-compressed data, not a report"),
    gettext_noop("zstd-compressed data, not a report"),
    gettext_noop("7-Zip archive, not a report"),
    gettext_noop("RAR archive, not a report"),
    gettext_noop("Microsoft Office document, not a report"),
    gettext_noop("HTML, not a report"),
    gettext_noop("not a report: unrecognised data (starts with %(start)s)"),
    gettext_noop("%(container)s holds %(what)s, not a report"),
    # reports/parsing/xmlgate.py
    gettext_noop("an HTML page, not a DMARC aggregate report"),
    gettext_noop("XML with a DOCTYPE (entity declarations are not allowed in reports)"),
    gettext_noop("XML nested more than %(count)s levels deep"),
    gettext_noop("XML but not a DMARC aggregate report (root <%(root)s>)"),
    gettext_noop("no XML element in the first %(count)s bytes"),
    gettext_noop("empty document"),
    gettext_noop("not XML: %(error)s"),
    # reports/parsing/aggregate.py
    gettext_noop("truncated XML: %(error)s"),
    gettext_noop("malformed XML: %(error)s (too large to try recovering it)"),
    gettext_noop("malformed XML: %(error)s; recovering it gave no valid report: %(reason)s"),
    gettext_noop("malformed XML: %(error)s"),
    gettext_noop(
        "more than %(count)s records before the report's metadata "
        "(<report_metadata> and <policy_published>)"
    ),
    gettext_noop("the report holds no <record>"),
    gettext_noop(
        "more than %(count)s elements in <feedback> outside any <record> (a report has a handful)"
    ),
    gettext_noop(
        "an element of more than %(size)s MB in the report (a record takes a few hundred bytes)"
    ),
    gettext_noop("the report has no <report_metadata>"),
    gettext_noop("the report has no <policy_published>"),
    gettext_noop("the report has no org_name (and no email to name the reporter by)"),
    gettext_noop("date_range end (%(end)s) is before begin"),
    gettext_noop("the report has no report_id"),
    gettext_noop("report_id is longer than %(count)s characters"),
    gettext_noop("the report has no policy domain (<policy_published><domain>)"),
    gettext_noop("policy_published domain %(domain)s is not a domain name: %(error)s"),
    gettext_noop("the report has no date_range <%(where)s>"),
    gettext_noop("date_range %(where)s %(value)s is not a whole number of seconds since 1970"),
    gettext_noop("date_range %(where)s %(value)s is in the future"),
    gettext_noop("date_range %(where)s %(value)s (%(date)s) is before 1990"),
    # reports/parsing/failure.py
    gettext_noop("the ARF feedback-report part has no Feedback-Type"),
    gettext_noop("ARF feedback type %(type)s is not an authentication failure report"),
    gettext_noop("no ARF feedback-report part"),
    gettext_noop("no reported domain"),
    gettext_noop("Source-IP %(value)s is not an IP address"),
    gettext_noop("%(field)s %(value)s is not a domain name: %(error)s"),
    # reports/parsing/tls.py
    gettext_noop("JSON but not an SMTP TLS report (RFC 8460)"),
    gettext_noop("the report has no policies"),
    gettext_noop("the report has %(count)s policies; at most %(limit)s are read"),
    gettext_noop("not valid JSON: nested too deeply"),
    gettext_noop("not valid JSON: %(error)s"),
    gettext_noop(
        "a JSON array of %(count)s items: only an array holding exactly one "
        "SMTP TLS report is accepted"
    ),
    gettext_noop("the report has no report-id"),
    gettext_noop("report-id is longer than %(count)s characters"),
    gettext_noop("the report has no date-range"),
    gettext_noop("date-range end-datetime is before start-datetime"),
    gettext_noop("date-range has no %(where)s"),
    gettext_noop("date-range %(where)s %(value)s is not a plausible date"),
    gettext_noop("date-range %(where)s %(value)s is not an RFC 3339 date-time"),
    gettext_noop("date-range %(where)s %(value)s is not a valid date: %(error)s"),
    gettext_noop("%(where)s policy-domain %(value)s is not a domain name: %(error)s"),
    gettext_noop("%(where)s failure-details should be a list, not %(type)s"),
    gettext_noop("%(where)s has %(count)s failure details; at most %(limit)s"),
    gettext_noop("%(where)s has %(count)s entries; at most %(limit)s"),
    gettext_noop("%(where)s %(key)s should be a whole number, not %(type)s"),
    gettext_noop("%(where)s %(key)s is negative (%(value)s)"),
    gettext_noop("%(where)s %(key)s is implausibly large (%(value)s)"),
    gettext_noop("%(where)s has no policy object"),
    gettext_noop("%(where)s has no summary"),
    gettext_noop("%(where)s has no policy-type"),
    gettext_noop("%(where)s has no policy-domain"),
    gettext_noop("%(where)s has no result-type"),
    gettext_noop("%(where)s %(value)s is not an IP address"),
    gettext_noop("%(where)s should be an object, not %(type)s"),
    gettext_noop("%(where)s should be text, not %(type)s"),
    gettext_noop("the report has no %(key)s"),
    # The mailbox connection test (reports/mailbox.py, pop3.py, mailserver.py): step names...
    gettext_noop("Login"),
    gettext_noop("Messages"),
    gettext_noop("Folder %(folder)s"),
    # ... and what each step found or why it failed.
    gettext_noop("none: plaintext is explicitly allowed for this mailbox"),
    gettext_noop("%(version)s, certificate valid for %(host)s"),
    gettext_noop("logged in as %(user)s (%(how)s)"),
    gettext_noop("logged in as %(user)s"),
    gettext_noop("connected to %(address)s port %(port)s"),
    gettext_noop("%(host)s (%(address)s) port %(port)s"),
    gettext_noop("exists"),
    gettext_noop("does not exist; not needed in read-only mode"),
    gettext_noop("created"),
    gettext_noop("%(count)s messages (UIDVALIDITY %(uidvalidity)s)"),
    gettext_noop("%(count)s message (UIDVALIDITY %(uidvalidity)s)"),
    gettext_noop("%(count)s messages (%(size)s), unique ids"),
    gettext_noop("%(count)s message (%(size)s), unique ids"),
    gettext_noop("no host name is configured for the mailbox"),
    gettext_noop("%(host)s did not answer %(command)s within %(seconds)s s"),
    gettext_noop("connection to %(host)s lost at %(command)s: %(error)s"),
    gettext_noop("the connection to %(host)s is already closed"),
    gettext_noop("%(host)s sent no IMAP greeting within %(seconds)s s"),
    gettext_noop("%(host)s did not greet as an IMAP server: %(error)s"),
    gettext_noop("%(host)s closed the connection at STARTTLS: %(error)s"),
    gettext_noop("%(host)s refused STARTTLS: %(error)s"),
    gettext_noop("%(host)s closed the connection at STLS"),
    gettext_noop("%(host)s refused STLS: %(error)s"),
    gettext_noop("%(host)s does not accept a password login on this connection"),
    gettext_noop("login refused for %(user)s"),
    gettext_noop("%(host)s refused %(command)s: %(error)s"),
    gettext_noop("certificate for %(host)s not valid: %(error)s"),
    gettext_noop("TLS with %(host)s failed: %(error)s"),
    gettext_noop("folder name %(folder)s has an empty part"),
    gettext_noop("%(host)s has no folder hierarchy: %(folder)s cannot be nested"),
    gettext_noop(
        "folder name %(folder)s contains %(separator)s, the separator of %(host)s's folders: "
        "use '/' between the parts of a folder name"
    ),
    gettext_noop("%(host)s gave no UIDVALIDITY for folder %(folder)s"),
    gettext_noop("%(host)s sent %(what)s at %(command)s"),
    gettext_noop("the user name or password contains a line break, which POP3 cannot send"),
    gettext_noop("%(host)s answered %(command)s with %(line)s"),
    gettext_noop("%(host)s sent no POP3 greeting within %(seconds)s s"),
    gettext_noop("%(host)s did not greet as a POP3 server: %(error)s"),
    gettext_noop(
        "%(host)s does not give unique message ids (UIDL): without them mailsec cannot tell a "
        "message it has stored from a new one. Use IMAP if the provider offers it, or ask them "
        "to enable UIDL (%(error)s)"
    ),
    gettext_noop("%(host)s gave an unusable unique id %(uid)s"),
    gettext_noop(
        "%(host)s offers no login mailsec supports (USER/PASS, SASL PLAIN or APOP; its SASL "
        "mechanisms: %(offered)s)"
    ),
    gettext_noop(
        "%(host)s port %(port)s does not offer %(command)s, and the password is never sent "
        "without TLS: use implicit TLS (usually port %(implicit)s), or ask the provider to "
        "enable it"
    ),
    gettext_noop("%(host)s is not a valid host name: %(error)s"),
    gettext_noop("unknown TLS mode %(mode)s"),
    gettext_noop(
        "the password for %(user)s would be sent to %(host)s without encryption: choose TLS or "
        "STARTTLS, or explicitly allow plaintext for this mailbox"
    ),
    gettext_noop("no TLS handshake with %(host)s within %(seconds)s s"),
    gettext_noop("DNS lookup for %(host)s failed (%(error)s): try again later"),
]


def _one(text: str) -> str | None:
    found = read_back(text, PATTERNS)
    if found is None:
        return None
    message, values = found
    return gettext(message) % {
        name: shown(value) if name in NESTED else value for name, value in values.items()
    }


def _line(line: str) -> str:
    """One stored line: a known text, or `where: text` (ingest stores each refused part so)."""
    whole = _one(line)
    if whole is not None:
        return whole
    start = 0
    while (colon := line.find(": ", start)) != -1:
        rest = _one(line[colon + 2 :])
        if rest is not None:
            return f"{line[: colon + 2]}{rest}"
        start = colon + 2
    return line


def shown(stored: str | None) -> str:
    """A stored text of the reports side in the active language; unknown texts as they are."""
    if not stored:
        return stored or ""
    return "\n".join(_line(line) for line in stored.split("\n"))
