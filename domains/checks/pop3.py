"""POP3 (RFC 1939, RFC 2595, RFC 8314): port 995 with implicit TLS and 110 with STLS.

The servers come from SRV records or the team's mail access hosts (checks/mailservers.py); the
verdicts are in checks/verdicts.py."""

from domains.checks.base import register
from domains.checks.mailservers import ProbeCheck
from domains.probes.results import Service


@register
class Pop3Check(ProbeCheck):
    name = "pop3"
    service = Service.POP3
