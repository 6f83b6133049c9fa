"""DNSSEC: is the domain's zone, and each MX host's zone, signed with a chain of trust that
validates from the configured trust anchors (settings.MAILSEC_DNSSEC_TRUST_ANCHORS)?

We validate ourselves, with dnspython, instead of trusting a resolver's AD bit: the resolver
may not validate at all, and a validating one answers SERVFAIL for bogus data, which we could
not tell from a broken server. So the DNSSEC records are asked with checking disabled (CD) and
every link is checked here:

- the trust anchor's zone: its DNSKEY RRset must hold a key matching an anchor DS (key tag,
  algorithm and digest) and be signed by such a key;
- walking one label at a time from the anchor's zone down to the name, a DS RRset found at a
  name is a zone cut into a signed child: the DS RRset must be signed by the parent's validated
  DNSKEYs, and the child's DNSKEY RRset is checked as above against that DS;
- a name with an SOA but no DS is a delegation without DS from a signed parent: everything
  from there down is insecure;
- the zone finally holding the name must have an SOA RRset that validates under its DNSKEYs.

The verdicts are those of RFC 4035 4.3: "secure", "insecure" and "bogus". Proofs of
non-existence (NSEC/NSEC3) for a missing DS are not checked (see `_walk`).
"""

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime

import dns.dnssec
import dns.dnssecalgs
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Check, Context, register
from domains.checks.mx import is_ip_literal
from domains.dns import DnsSession, name_text
from domains.findings import finding
from domains.messages import Message, english, msg

SECURE, INSECURE, BOGUS = "secure", "insecure", "bogus"
DIGEST_TYPES = {1: "SHA-1", 2: "SHA-256", 4: "SHA-384"}  # what dns.dnssec.make_ds can compute
# RSAMD5, DSA and DSA-NSEC3-SHA1 must not be validated (RFC 8624 3.1): zones signed only with
# them are insecure, as with any algorithm we cannot validate (RFC 4035 5.2).
DENIED_ALGORITHMS = {1, 3, 6}
ZONE_FLAG = 0x0100
SEP_FLAG = 0x0001


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: str  # SECURE, INSECURE or BOGUS
    # secure: the signed zone holding the name; insecure: the delegation without DS where the
    # chain of trust ends ("" when no trust anchor covers the name); bogus: the failing zone.
    zone: str
    reason: str = ""  # the evidence, one or more sentences (English)
    message: Message | None = dataclasses.field(default=None, compare=False)  # to translate


def _verdict(status: str, zone: str, text: str, /, **args) -> Verdict:
    """A verdict whose reason is a translatable template (findings.msg) with its arguments."""
    message = msg(text, **args)
    return Verdict(status, zone, english(message), message)


class _Stop(Exception):
    def __init__(self, verdict: Verdict):
        super().__init__(verdict.reason)
        self.verdict = verdict


def _text(name: dns.name.Name) -> str:
    return name_text(name) or "."


# --- pure helpers ---------------------------------------------------------------------------


def parse_anchors(texts: Iterable[str]) -> dict[dns.name.Name, list]:
    """DS records in presentation format ("owner [ttl] [class] DS tag alg digest-type digest")
    grouped by owner."""
    anchors: dict[dns.name.Name, list] = {}
    for text in texts:
        tokens = text.split()
        try:
            owner = dns.name.from_text(tokens[0])
            rest = tokens[1:]
            if rest and rest[0].isdigit():
                rest = rest[1:]
            if rest and rest[0].upper() == "IN":
                rest = rest[1:]
            if not rest or rest[0].upper() != "DS":
                raise ValueError("not a DS record")
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, " ".join(rest[1:]))
        except (IndexError, ValueError, dns.exception.DNSException) as exc:
            raise ImproperlyConfigured(
                f"MAILSEC_DNSSEC_TRUST_ANCHORS: {text!r} is not a DS record ({exc})"
            ) from None
        anchors.setdefault(owner, []).append(rdata)
    return anchors


def algorithm_supported(algorithm: int) -> bool:
    """Whether we can validate signatures of this DNSKEY algorithm (RFC 8624 denials apply)."""
    try:
        dns.dnssecalgs.get_algorithm_cls(algorithm)
    except dns.exception.DNSException:
        return False
    return algorithm not in DENIED_ALGORITHMS


def ds_supported(ds) -> bool:
    return algorithm_supported(ds.algorithm) and ds.digest_type in DIGEST_TYPES


def ds_matches(zone: dns.name.Name, key, ds) -> bool:
    """Whether the DNSKEY `key` of `zone` is the one the DS record points to."""
    if dns.dnssec.key_id(key) != ds.key_tag or key.algorithm != ds.algorithm or key.protocol != 3:
        return False
    if not key.flags & ZONE_FLAG:  # RFC 4034 5.2: only zone keys
        return False
    try:
        made = dns.dnssec.make_ds(zone, key, ds.digest_type, validating=True)
    except (dns.dnssec.UnsupportedAlgorithm, dns.dnssec.DeniedByPolicy, ValueError):
        return False
    return made.digest == ds.digest


def describe_ds(ds) -> str:
    digest = DIGEST_TYPES.get(ds.digest_type, f"digest type {ds.digest_type}")
    algorithm = dns.dnssec.algorithm_to_text(ds.algorithm)
    return f"key tag {ds.key_tag}, algorithm {ds.algorithm} ({algorithm}), {digest}"


def describe_key(key) -> str:
    role = "KSK/SEP" if key.flags & SEP_FLAG else "ZSK"
    algorithm = dns.dnssec.algorithm_to_text(key.algorithm)
    return f"{dns.dnssec.key_id(key)} {algorithm} flags {key.flags} ({role})"


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def signature_problem(
    rrset, rrsigs: Iterable, signer: dns.name.Name, keys, now: float | None = None
) -> str | None:
    """None when one of `rrsigs` validates `rrset` with a key of `keys` (a DNSKEY rdataset of
    the zone `signer`); otherwise why not, signature by signature."""
    rrsigs = list(rrsigs)
    if not rrsigs:
        return "it has no signature (RRSIG)"
    if now is None:
        now = datetime.now(UTC).timestamp()
    problems = []
    for rrsig in rrsigs:
        by = f"RRSIG by {_text(rrsig.signer)} key tag {rrsig.key_tag} algorithm {rrsig.algorithm}"
        if rrsig.signer != signer:
            problems.append(f"{by}: not made by the zone {_text(signer)}")
            continue
        candidates = [
            k
            for k in keys
            if dns.dnssec.key_id(k) == rrsig.key_tag and k.algorithm == rrsig.algorithm
        ]
        if not candidates:
            problems.append(f"{by}: not made by any of those keys")
            continue
        if not algorithm_supported(rrsig.algorithm):
            problems.append(f"{by}: algorithm not supported")
            continue
        if rrsig.expiration < now:
            problems.append(f"{by}: expired on {_when(rrsig.expiration)}")
            continue
        if rrsig.inception > now:
            problems.append(f"{by}: not valid before {_when(rrsig.inception)}")
            continue
        try:
            dns.dnssec.validate_rrsig(rrset, rrsig, {signer: keys}, now=now)
        except (dns.dnssec.ValidationFailure, dns.dnssec.UnsupportedAlgorithm) as exc:
            reason = "the signature does not verify" if str(exc) == "verify failure" else exc
            problems.append(f"{by}: {reason}")
            continue
        return None
    return "; ".join(problems)


def rrsigs_for(answer) -> list:
    """The RRSIGs that came with an answer's records."""
    try:
        found = answer.response.find_rrset(
            answer.response.answer,
            answer.rrset.name,
            dns.rdataclass.IN,
            dns.rdatatype.RRSIG,
            answer.rrset.rdtype,
        )
    except (KeyError, AttributeError):
        return []
    return list(found)


# --- the validator --------------------------------------------------------------------------


class Validator:
    """Validates names against the trust anchors through one DnsSession. Zones met twice (the
    domain's and its MX hosts', or several MX hosts in one zone) are validated once."""

    def __init__(self, session: DnsSession, anchors: Iterable[str], *, now: float | None = None):
        self.session = session
        self.anchors = parse_anchors(anchors)
        self.now = now
        self._keys: dict[dns.name.Name, object] = {}  # zone -> DNSKEY rdataset, or a Verdict
        self._verdicts: dict[dns.name.Name, Verdict] = {}

    def anchor_for(self, name: dns.name.Name) -> dns.name.Name | None:
        covering = [owner for owner in self.anchors if name.is_subdomain(owner)]
        return max(covering, key=len, default=None)

    def queries(self, name: str) -> list[tuple[str, str]]:
        """What walking to `name` will ask (when no zone cut stops the walk earlier)."""
        target = dns.name.from_text(name)
        anchor = self.anchor_for(target)
        if anchor is None:
            return []
        found = [(_text(anchor), "DNSKEY")]
        for depth in range(len(anchor) + 1, len(target) + 1):
            child = _text(target.split(depth)[1])
            found += [(child, "DS"), (child, "SOA"), (child, "DNSKEY")]
        return found

    def prefetch(self, *names: str) -> None:
        """Send the walks' lookups ahead (with CD, as the walk asks them)."""
        for name in names:
            self.session.prefetch(*self.queries(name), cd=True)

    def lookup(self, name: dns.name.Name, rdtype: str):
        return self.session.lookup(_text(name), rdtype, cd=True)

    def verdict(self, name: str) -> Verdict:
        target = dns.name.from_text(name)
        if target not in self._verdicts:
            try:
                verdict = self._walk(target)
            except _Stop as stop:
                verdict = stop.verdict
            self._verdicts[target] = verdict
        return self._verdicts[target]

    def _walk(self, target: dns.name.Name) -> Verdict:
        anchor = self.anchor_for(target)
        if anchor is None:
            return _verdict(
                INSECURE,
                "",
                gettext_noop(
                    "No configured trust anchor (MAILSEC_DNSSEC_TRUST_ANCHORS) covers %(name)s, "
                    "so it cannot be validated."
                ),
                name=_text(target),
            )
        zone = anchor
        keys = self._zone_keys(
            zone, self.anchors[anchor], msg(gettext_noop("the configured trust anchor"))
        )
        for depth in range(len(anchor) + 1, len(target) + 1):
            child = target.split(depth)[1]
            ds = self.lookup(child, "DS")
            if ds.exists and ds.rrset.name == child:
                problem = signature_problem(ds.rrset, rrsigs_for(ds), zone, keys, self.now)
                if problem:
                    raise _Stop(
                        _verdict(
                            BOGUS,
                            _text(child),
                            gettext_noop(
                                "The DS RRset of %(child)s is not validly signed by the keys of "
                                "its parent zone %(zone)s: %(problem)s."
                            ),
                            child=_text(child),
                            zone=_text(zone),
                            problem=problem,
                        )
                    )
                source = msg(gettext_noop("the DS in %(zone)s"), zone=_text(zone))
                keys = self._zone_keys(child, list(ds.rrset), source)
                zone = child
                continue
            if ds.status == "nxdomain":
                break  # the name does not exist: it is (not) in `zone`
            # No DS here. We do not check the NSEC/NSEC3 proof that there is none: an attacker
            # able to forge that denial could make a signed zone look unsigned (insecure), but
            # never make forged data look secure.
            soa = self.lookup(child, "SOA")
            if soa.exists and soa.rrset.name == child and not soa.via_cname:
                return _verdict(
                    INSECURE,
                    _text(child),
                    gettext_noop(
                        "The chain of trust ends at %(child)s: its parent zone %(zone)s is "
                        "signed but has no DS record for it (a delegation to an unsigned zone)."
                    ),
                    child=_text(child),
                    zone=_text(zone),
                )
            if soa.status == "nxdomain":
                break
        soa = self.lookup(zone, "SOA")
        if not soa.exists or soa.rrset.name != zone:
            return _verdict(
                BOGUS,
                _text(zone),
                gettext_noop("The signed zone %(zone)s answers no SOA record at its apex."),
                zone=_text(zone),
            )
        problem = signature_problem(soa.rrset, rrsigs_for(soa), zone, keys, self.now)
        if problem:
            return _verdict(
                BOGUS,
                _text(zone),
                gettext_noop(
                    "The SOA RRset of %(zone)s is not validly signed by the zone's keys: "
                    "%(problem)s."
                ),
                zone=_text(zone),
                problem=problem,
            )
        return _verdict(
            SECURE,
            _text(zone),
            gettext_noop("%(zone)s validates from the trust anchor."),
            zone=_text(zone),
        )

    def _zone_keys(self, zone: dns.name.Name, ds_records: list, source: Message):
        """The zone's validated DNSKEY rdataset; raises _Stop with the verdict otherwise."""
        known = self._keys.get(zone)
        if known is None:
            try:
                known = self._validate_keys(zone, ds_records, source)
            except _Stop as stop:
                known = stop.verdict
            self._keys[zone] = known
        if isinstance(known, Verdict):
            raise _Stop(known)
        return known

    def _validate_keys(self, zone: dns.name.Name, ds_records: list, source: Message):
        name = _text(zone)
        usable = [ds for ds in ds_records if ds_supported(ds)]
        if not usable:
            listed = "; ".join(describe_ds(ds) for ds in ds_records)
            raise _Stop(
                _verdict(
                    INSECURE,
                    name,
                    gettext_noop(
                        "The DS records of %(name)s (%(listed)s) use only algorithms or digest "
                        "types this validator does not support, which makes the zone insecure "
                        "(RFC 4035 5.2)."
                    ),
                    name=name,
                    listed=listed,
                )
            )
        answer = self.lookup(zone, "DNSKEY")
        if not answer.exists or answer.rrset.name != zone:
            raise _Stop(
                _verdict(
                    BOGUS,
                    name,
                    gettext_noop(
                        "%(name)s has a DS record (%(source)s) but publishes no DNSKEY records."
                    ),
                    name=name,
                    source=source,
                )
            )
        dnskeys = list(answer.rrset)
        matching = [k for k in dnskeys if any(ds_matches(zone, k, ds) for ds in usable)]
        if not matching:
            wanted = "; ".join(describe_ds(ds) for ds in usable)
            have = ", ".join(describe_key(k) for k in dnskeys)
            text = gettext_noop(
                "No DNSKEY of %(name)s matches its DS (%(source)s: %(wanted)s); the zone's keys "
                "are %(have)s."
            )
            same_tag = [
                k
                for k in dnskeys
                if any(
                    (dns.dnssec.key_id(k), k.algorithm) == (ds.key_tag, ds.algorithm)
                    for ds in usable
                )
            ]
            if same_tag:
                text = gettext_noop(
                    "No DNSKEY of %(name)s matches its DS (%(source)s: %(wanted)s); the zone's "
                    "keys are %(have)s. Key %(tags)s has the DS's key tag and algorithm, but its "
                    "digest differs: the DS at the parent is wrong or stale."
                )
            tags = ", ".join(str(dns.dnssec.key_id(k)) for k in same_tag)
            raise _Stop(
                _verdict(
                    BOGUS, name, text, name=name, source=source, wanted=wanted, have=have, tags=tags
                )
            )
        trusted = dns.rdataset.from_rdata_list(answer.rrset.ttl, matching)
        problem = signature_problem(answer.rrset, rrsigs_for(answer), zone, trusted, self.now)
        if problem:
            tags = ", ".join(str(dns.dnssec.key_id(k)) for k in matching)
            raise _Stop(
                _verdict(
                    BOGUS,
                    name,
                    gettext_noop(
                        "The DNSKEY RRset of %(name)s is not validly signed by a key its DS "
                        "(%(source)s) points to (key tag %(tags)s): %(problem)s."
                    ),
                    name=name,
                    source=source,
                    tags=tags,
                    problem=problem,
                )
            )
        return answer.rrset

    # -- for the records ---------------------------------------------------------------------

    def records(self, zone: str) -> dict:
        """The DS and DNSKEY records of a zone, for history."""
        if not zone:
            return {"DS": [], "DNSKEY": []}
        owner = dns.name.from_text(zone)
        if owner in self.anchors:
            ds = self.anchors[owner]
        else:
            answer = self.lookup(owner, "DS")
            ds = answer.rdatas if answer.exists and answer.rrset.name == owner else []
        keys = self.lookup(owner, "DNSKEY")
        dnskeys = keys.rdatas if keys.exists and keys.rrset.name == owner else []
        return {
            "DS": [ds_record.to_text() for ds_record in ds],
            "DNSKEY": [describe_key(key) for key in dnskeys],
        }


def mail_hosts(ctx: Context) -> tuple[list[str], bool]:
    """The MX host names (IP literals, which have no zone, left out) and whether the domain has
    a null MX. From the mx check's data; when that check could not finish (some other lookup of
    its failed), from the MX answer itself."""
    if "hosts" in ctx.data("mx"):
        hosts, null = ctx.mx_hosts, ctx.null_mx
    else:
        answer = ctx.dns.lookup(ctx.domain, "MX")
        names = [name_text(r.exchange) for r in sorted(answer.rdatas, key=lambda r: r.preference)]
        hosts, null = [host for host in names if host], "" in names
    return [host for host in hosts if not is_ip_literal(host)], null


# --- the check ------------------------------------------------------------------------------


@register
class DnssecCheck(Check):
    name = "dnssec"
    requires = ("mx",)

    def prefetch(self, ctx: Context):
        # Asked with CD, which the engine's prefetch (without CD) cannot do: started here.
        Validator(ctx.dns, settings.MAILSEC_DNSSEC_TRUST_ANCHORS).prefetch(ctx.domain)
        return []

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        validator = Validator(ctx.dns, settings.MAILSEC_DNSSEC_TRUST_ANCHORS)
        hosts, null = mail_hosts(ctx)
        if null:
            hosts = []
        validator.prefetch(*hosts)
        domain = validator.verdict(ctx.domain)
        result.records = validator.records(domain.zone)
        if domain.status == INSECURE:
            detail = msg(
                gettext_noop("%(domain)s is not protected by DNSSEC. %(reason)s"),
                domain=ctx.domain,
                reason=domain.message or domain.reason,
            )
            if domain.zone and result.records["DNSKEY"]:
                detail = msg(
                    gettext_noop(
                        "%(domain)s is not protected by DNSSEC. %(reason)s %(zone)s does publish "
                        "DNSKEY records (%(keys)s): the DS record for them is missing at the "
                        "parent (registrar)."
                    ),
                    domain=ctx.domain,
                    reason=domain.message or domain.reason,
                    zone=domain.zone,
                    keys=result.records["DNSKEY"],
                )
            result.findings.append(finding("dnssec.unsigned", detail, domain=ctx.domain))
        elif domain.status == BOGUS:
            detail = msg(
                gettext_noop("%(domain)s fails DNSSEC validation in the root zone. %(reason)s")
                if domain.zone in ("", ".")
                else gettext_noop(
                    "%(domain)s fails DNSSEC validation in the zone %(zone)s. %(reason)s"
                ),
                domain=ctx.domain,
                zone=domain.zone,
                reason=domain.message or domain.reason,
            )
            result.findings.append(finding("dnssec.bogus", detail, domain=ctx.domain))
        mx = {host: validator.verdict(host) for host in hosts}
        result.data = {"domain": domain.status, "mx": {h: v.status for h, v in mx.items()}}
        # One finding per zone, naming its hosts; none for the domain's own zone (reported above).
        by_zone: dict[tuple[str, str], list[str]] = {}
        for host, verdict in mx.items():
            if verdict.status == SECURE:
                continue
            if verdict.status == domain.status and verdict.zone == domain.zone:
                continue
            by_zone.setdefault((verdict.status, verdict.zone), []).append(host)
        for (status, _zone), zone_hosts in by_zone.items():
            verdict = mx[zone_hosts[0]]
            one = len(zone_hosts) == 1
            root = verdict.zone in ("", ".")
            if status == INSECURE:
                text = (
                    gettext_noop("MX host %(names)s: not protected by DNSSEC. %(reason)s")
                    if one
                    else gettext_noop("MX hosts %(names)s: not protected by DNSSEC. %(reason)s")
                )
                kind = "dnssec.mx_unsigned"
            else:
                text = {
                    (True, True): gettext_noop(
                        "MX host %(names)s: DNSSEC validation fails in the root zone. %(reason)s"
                    ),
                    (True, False): gettext_noop(
                        "MX host %(names)s: DNSSEC validation fails in the zone %(zone)s. "
                        "%(reason)s"
                    ),
                    (False, True): gettext_noop(
                        "MX hosts %(names)s: DNSSEC validation fails in the root zone. %(reason)s"
                    ),
                    (False, False): gettext_noop(
                        "MX hosts %(names)s: DNSSEC validation fails in the zone %(zone)s. "
                        "%(reason)s"
                    ),
                }[one, root]
                kind = "dnssec.mx_bogus"
            detail = msg(
                text,
                names=zone_hosts,
                zone=verdict.zone,
                reason=verdict.message or verdict.reason,
            )
            result.findings.append(finding(kind, detail, domain=ctx.domain))
        return result
