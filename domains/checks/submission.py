"""Mail submission (RFC 6409, RFC 8314): port 465 with implicit TLS and 587 with STARTTLS.

The servers come from SRV records or the team's mail access hosts (checks/mailservers.py); the
verdicts are in checks/verdicts.py."""

from domains.checks.base import register
from domains.checks.mailservers import ProbeCheck
from domains.probes.results import Service


@register
class SubmissionCheck(ProbeCheck):
    name = "submission"
    service = Service.SUBMISSION
