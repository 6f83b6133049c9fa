"""A resolver on loopback that lies, the way captive portals, filtering resolvers and
DNSSEC-stripping middleboxes do: put it in front of the tests' knot.

    with LyingResolver((knot.host, knot.port), lie=NXDOMAIN_EVERYTHING) as liar:
        ... query liar.host:liar.port ...

- NXDOMAIN_EVERYTHING: every name "does not exist", the root zone included.
- STRIP_SIGNATURES: forwards, then removes every RRSIG from the answer.
- `refuse=[names]`: REFUSED for those names and the names under them, the rest forwarded.
"""

from collections.abc import Iterable

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from bench.dns_forwarder import DnsForwarder

NXDOMAIN_EVERYTHING, STRIP_SIGNATURES = "nxdomain", "strip"


class LyingResolver(DnsForwarder):
    def __init__(self, upstream: tuple[str, int], *, lie: str = "", refuse: Iterable[str] = ()):
        super().__init__(upstream)
        if lie not in ("", NXDOMAIN_EVERYTHING, STRIP_SIGNATURES):
            raise ValueError(f"unknown lie {lie!r}")
        self.lie = lie
        self.refuse = tuple(dns.name.from_text(name) for name in refuse)

    async def _ask(self, query: bytes, transport) -> bytes | None:
        question = dns.message.from_wire(query)
        qname = question.question[0].name
        if self.lie == NXDOMAIN_EVERYTHING:
            return self._reply(question, dns.rcode.NXDOMAIN)
        if any(qname.is_subdomain(name) for name in self.refuse):
            return self._reply(question, dns.rcode.REFUSED)
        answer = await super()._ask(query, transport)
        if self.lie == STRIP_SIGNATURES and answer is not None:
            response = dns.message.from_wire(answer)
            for section in (response.answer, response.authority):
                section[:] = [r for r in section if r.rdtype != dns.rdatatype.RRSIG]
            return response.to_wire()
        return answer

    @staticmethod
    def _reply(question: dns.message.Message, rcode: int) -> bytes:
        response = dns.message.make_response(question)
        response.set_rcode(rcode)
        return response.to_wire()
