"""Pure report parsing: bytes in, report data (or a reason for refusing) out. No database."""

from reports.parsing.types import Payload, Refused, Report

__all__ = ["Payload", "Refused", "Report", "parse"]


def parse(payload: Payload) -> Report:
    """Parse one payload found by unpack.payloads(); raise Refused with the reason."""
    from reports.parsing import aggregate, failure, tls

    parser = {"xml": aggregate.parse, "json": tls.parse, "arf": failure.parse}[payload.kind]
    return parser(payload)
