"""IMAP (RFC 9051, RFC 8314): port 993 with implicit TLS and 143 with STARTTLS.

The servers come from SRV records or the team's mail access hosts (checks/mailservers.py); the
verdicts are in checks/verdicts.py."""

from domains.checks.base import register
from domains.checks.mailservers import ProbeCheck
from domains.probes.results import Service


@register
class ImapCheck(ProbeCheck):
    name = "imap"
    service = Service.IMAP
