"""The verdicts of the protocol probe categories: probe results in, findings and server
summaries out. Pure: no DNS, no sockets, no clock but the `now` given (tests build the
ProbeResults by hand).

Evidence stays the same from one run to the next while nothing changes (dates, never "in 9
days"; no durations): a finding whose text changes would look new to the timeline and alerts.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Finding, Severity, Status
from domains.findings import finding
from domains.messages import Message, msg
from domains.messages import lines as evidence_lines
from domains.probes.results import ProbeResult, Reach, Service, Target, TlsMode
from domains.probes.wording import worded

EXPIRING_DAYS = 14
OUTDATED_VERSIONS = {"SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1"}
SILENT = {Reach.REFUSED, Reach.TIMEOUT, Reach.NO_GREETING, Reach.RESET, Reach.BAD_GREETING}
REACH_WORDS = {
    Reach.REFUSED: gettext_noop("connection refused"),
    Reach.TIMEOUT: gettext_noop("no TCP connection (timeout)"),
    Reach.NO_GREETING: gettext_noop("connected, but no greeting came (timeout)"),
    Reach.RESET: gettext_noop("the connection was closed or reset"),
    Reach.BAD_GREETING: gettext_noop("answered, but not with a greeting of the protocol"),
    Reach.REFUSED_TARGET: gettext_noop(
        "not probed: a private address (MAILSEC_ALLOW_PRIVATE_TARGETS is off)"
    ),
    Reach.ERROR: gettext_noop("network error"),
    Reach.TLS_FAILED: gettext_noop("the TLS handshake failed"),
}
ORDER = [  # the order of the findings of one category
    "open_relay", "tls_missing", "plaintext_auth", "cert_expired", "cert_untrusted",
    "cert_name_mismatch", "cert_expiring", "tls_outdated", "banner_mismatch", "unreachable",
]  # fmt: skip


@dataclass
class HostPolicy:
    """What senders require of one target beyond opportunistic TLS."""

    sts_mode: str = ""  # the MTA-STS policy's mode when it covers this MX ("enforce", ...)
    tlsa: list[tuple[int, int, int, str]] = field(default_factory=list)  # usable, DNSSEC-valid
    tlsa_name: str = ""
    dane: str = "none"  # "none", "match" or "mismatch" (set by judge from the chain served)
    dane_reason: str = ""
    dane_untested: str = ""  # why DANE was not judged (a failed lookup), else ""

    @property
    def dane_ta(self) -> bool:
        """A DANE-TA record makes senders check names and dates too (RFC 7672 3.2.2)."""
        return any(usage == 2 for usage, *_ in self.tlsa)


def parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def answered(result: ProbeResult | None) -> bool:
    """The server spoke: greeted, or (implicit TLS) at least took part in a TLS handshake that
    failed (then `tls_missing` says so)."""
    if result is None:
        return False
    return result.reach in (Reach.OK, Reach.TLS_FAILED)


def _at(target: Target) -> Message:
    """The server, in a line of evidence: "mx.example.com (192.0.2.1) port 25"."""
    return msg(
        gettext_noop("%(host)s (%(address)s) port %(port)s"),
        host=target.host,
        address=target.address,
        port=str(target.port),
    )


def _reach(result: ProbeResult) -> Message:
    """Why a server did not answer (the error itself is the system's words, untranslated)."""
    words = msg(REACH_WORDS.get(result.reach, str(result.reach)))
    if result.error and result.reach != Reach.REFUSED_TARGET:
        return msg(gettext_noop("%(words)s: %(error)s"), words=words, error=worded(result.error))
    return words


def _line(target: Target, text: str, **args) -> Message:
    """One server's evidence: `text` starts with %(at)s, the server."""
    return msg(text, at=_at(target), **args)


def dane_state(policy: HostPolicy, result: ProbeResult, match) -> tuple[str, str]:
    """ "none" without usable TLSA records; else whether the chain served matches one.
    `match(records, chain_der_hex)` is domains.probes.dane.match (a DaneResult)."""
    if policy.dane_untested:
        return "none", policy.dane_untested
    if not policy.tlsa:
        return "none", ""
    if result.starttls_offered is False:
        return "mismatch", "no STARTTLS: DANE senders do not deliver without TLS"
    tls = result.tls
    chain = tls.certificate.chain_der_hex if tls and tls.certificate else []
    outcome = match(policy.tlsa, chain)
    if outcome.status == "match":
        return "match", ""
    if outcome.status == "none":
        return "none", ""
    return "mismatch", f"{policy.tlsa_name}: " + "; ".join(outcome.evidence)


def server_summary(result: ProbeResult | None, target: Target, policy: HostPolicy) -> dict:
    """One row of the mail servers table, and of `servers` in the JSON output."""
    row = {
        "host": target.host,
        "address": target.address,
        "port": target.port,
        "service": str(target.service),
        "tls_mode": str(target.tls_mode),
        "probed_at": result.probed_at if result else None,
        "reachable": answered(result),
        "reach": str(result.reach) if result else "pending",
        "error": result.error if result else "",
        "starttls": result.starttls_offered if result else None,
        "tls_version": "",
        "cipher": "",
        "tls_versions": [],
        "certificate": None,
        "dane": policy.dane,
        "dane_detail": policy.dane_reason,
        "plaintext_auth": bool(result and result.plaintext_auth),
    }
    if target.service == Service.SMTP:
        row["open_relay"] = bool(result and result.open_relay)
        row["banner"] = result.ehlo_name if result else ""
    tls = result.tls if result else None
    if tls:
        row.update(tls_version=tls.version, cipher=tls.cipher, tls_versions=tls.accepted_versions)
        cert = tls.certificate
        if cert:
            row["certificate"] = {
                "subject": cert.subject,
                "issuer": cert.issuer,
                "not_after": cert.not_after,
                "names": cert.names,
                "trusted": cert.trusted,
                "name_matches": cert.name_matches,
                "key": f"{cert.key_type} {cert.key_bits}".strip(),
                "signature_hash": cert.signature_hash,
            }
    return row


@dataclass
class _Found:
    """Evidence gathered per finding kind, one line per server, and its severity."""

    lines: dict[str, list[Message]] = field(default_factory=dict)
    severity: dict[str, Severity] = field(default_factory=dict)

    def add(self, kind: str, line: Message, severity: Severity | None = None) -> None:
        self.lines.setdefault(kind, []).append(line)
        if severity is not None:
            current = self.severity.get(kind)
            if current is None or severity.rank < current.rank:
                self.severity[kind] = severity


def judge(
    service: Service,
    plan,
    results: dict,
    policies: dict,
    now: datetime,
    match=None,
    domain: str = "",
) -> CategoryResult:
    """The category's result: `plan` is a mailservers.Plan, `results` ProbeResults (or None,
    not probed) and `policies` HostPolicies by target key."""
    name = str(service)
    result = CategoryResult(name)
    result.records = {"SRV": plan.srv} if plan.srv else {}
    if not plan.targets:
        result.applicable = False
        result.servers = []
        result.findings.append(_no_hosts(service, plan, domain))
        return result
    rows, found = [], _Found()
    for target in plan.targets:
        probe = results.get(target.key)
        policy = policies.get(target.key) or HostPolicy()
        if probe is not None and answered(probe):
            policy.dane, policy.dane_reason = dane_state(policy, probe, match or _no_matcher)
        row = server_summary(probe, target, policy)
        row["priority"] = plan.priority.get(target.key)  # MX preference or SRV priority
        rows.append(row)
    result.servers = rows
    result.data = {"servers": rows, "dane": _dane_lines(plan, policies)}
    probed = {t.key: results.get(t.key) for t in plan.targets}
    spoke = [k for k, r in probed.items() if answered(r)]
    untested = _untested(plan, probed)
    if not spoke:
        return _nothing_answered(service, plan, probed, untested, result, domain)
    for target in plan.targets:
        probe = probed[target.key]
        if answered(probe):
            _judge_server(service, target, probe, policies.get(target.key), now, found)
        elif probe is not None and probe.reach in SILENT and target.key not in plan.optional:
            severity = Severity.MEDIUM if service != Service.SMTP else None
            found.add(
                "unreachable",
                _line(target, gettext_noop("%(at)s: %(reach)s"), reach=_reach(probe)),
                severity,
            )
    result.findings = _findings(name, found, domain) + _ptr_failures(plan, probed, domain)
    if untested:
        detail = msg(gettext_noop("Not tested: %(lines)s."), lines=untested)
        result.findings.append(finding("probe.not_tested", detail, domain=domain, category=name))
    return result


def _no_matcher(records, chain):
    raise RuntimeError("no DANE matching function given")


def _dane_lines(plan, policies: dict) -> dict:
    """TLSA names with usable records, for the dane category's cross-check."""
    return {
        key: policies[key].tlsa_name for key in (t.key for t in plan.targets) if key in policies
    }


def _untested(plan, probed: dict) -> list[Message]:
    """Targets this run says nothing about: not probed yet, refused as private, local errors."""
    lines = []
    for target in plan.targets:
        probe = probed[target.key]
        if probe is None:
            lines.append(_line(target, gettext_noop("%(at)s: not probed yet")))
        elif probe.reach in (Reach.REFUSED_TARGET, Reach.ERROR) and not answered(probe):
            lines.append(_line(target, gettext_noop("%(at)s: %(reach)s"), reach=_reach(probe)))
    return lines


def _ptr_failures(plan, probed: dict, domain: str) -> list[Finding]:
    """A failed PTR (or forward) lookup of a probed address voids only its banner verdict: one
    finding, as the engine reports the failed lookups that void one verdict."""
    found = [
        _line(
            t,
            gettext_noop("%(at)s: %(error)s; banner and FCrDNS of %(address)s not tested"),
            error=worded(probed[t.key].ptr_error),
            address=t.address,
        )
        for t in plan.targets
        if answered(probed[t.key]) and probed[t.key].ptr_error
    ]
    if not found:
        return []
    detail = evidence_lines(found)
    return [finding("dns.partial_lookup_failed", detail, domain=domain, category="smtp")]


def _nothing_answered(service, plan, probed, untested, result, domain) -> CategoryResult:
    """No server spoke. Configured bare hosts: the service is not offered there. Port 25: could
    not test (outbound port 25 is blocked in many networks). Other SRV or configured ports:
    unreachable, unless nothing was tested at all."""
    name = str(service)
    silent = [
        (t, probed[t.key]) for t in plan.targets if probed[t.key] and probed[t.key].reach in SILENT
    ]
    said = [_line(t, gettext_noop("%(at)s: %(reach)s"), reach=_reach(p)) for t, p in silent]
    said += untested
    if plan.targets and all(t.key in plan.optional for t in plan.targets) and not untested:
        result.applicable = False
        detail = msg(
            gettext_noop("No configured host answers on the standard ports: %(lines)s."),
            lines=said,
        )
        result.findings = [finding(f"{name}.no_hosts", detail, domain=domain)]
        return result
    if service == Service.SMTP or not silent:
        result.status = Status.ERROR
        if service == Service.SMTP and silent:
            text = gettext_noop(
                "No MX host answered on port 25 from mailsec's machine, so nothing could be "
                "tested (outbound port 25 is blocked in many networks): %(lines)s."
            )
        else:
            text = gettext_noop("Nothing could be tested: %(lines)s.")
        detail = msg(text, lines=said)
        result.findings = [finding("probe.not_tested", detail, domain=domain, category=name)]
        return result
    found = _Found()
    for target, probe in silent:
        if target.key not in plan.optional:
            found.add(
                "unreachable", _line(target, gettext_noop("%(at)s: %(reach)s"), reach=_reach(probe))
            )
    result.findings = _findings(name, found, domain)
    if untested:
        detail = msg(gettext_noop("Not tested: %(lines)s."), lines=untested)
        result.findings.append(finding("probe.not_tested", detail, domain=domain, category=name))
    return result


def _no_hosts(service: Service, plan, domain: str) -> Finding:
    name = str(service)
    if service == Service.SMTP and plan.no_address:
        detail = msg(
            gettext_noop(
                "No MX host to probe (null MX, no MX, or MX hosts without addresses: %(hosts)s)."
            ),
            hosts=plan.no_address,
        )
    elif service == Service.SMTP:
        detail = msg(
            gettext_noop(
                "No MX host to probe (null MX, no MX, or MX hosts without addresses: none)."
            )
        )
    elif plan.not_offered and not plan.no_address:
        detail = msg(
            gettext_noop("The SRV records %(names)s say the service is not offered."),
            names=plan.not_offered,
        )
    elif plan.no_address:
        detail = msg(
            gettext_noop("%(hosts)s: no A or AAAA record, nothing to probe."),
            hosts=plan.no_address,
        )
    else:
        detail = msg(
            gettext_noop(
                "No SRV record (%(names)s) and no mail access host configured for this service: "
                "mailsec does not guess host names."
            ),
            names=_srv_names(service, domain),
        )
    return finding(f"{name}.no_hosts", detail, domain=domain)


def _srv_names(service: Service, domain: str) -> list[str]:
    from domains.checks.mailservers import SRV_NAMES

    return [f"{prefix}.{domain or 'example.com'}" for prefix, _ in SRV_NAMES[service]]


def _judge_server(service, target, probe: ProbeResult, policy, now, found: _Found) -> None:
    policy = policy or HostPolicy()
    smtp = service == Service.SMTP
    tls = probe.tls
    if target.tls_mode == TlsMode.STARTTLS and not probe.starttls_offered:
        command, asked = {
            Service.IMAP: ("STARTTLS", "CAPABILITY"),
            Service.POP3: ("STLS", "CAPA"),
        }.get(service, ("STARTTLS", "EHLO"))
        said = " ".join(probe.capabilities_plain[:12]) or msg(gettext_noop("nothing"))
        if probe.ehlo_refused:  # HELO only: no extensions, so no STARTTLS
            said = msg(
                gettext_noop("refused with %(reply)s; HELO has no extensions"),
                reply=probe.ehlo_refused,
            )
        found.add(
            "tls_missing",
            _line(
                target,
                gettext_noop("%(at)s: %(command)s not offered (%(asked)s says: %(said)s)"),
                command=command,
                asked=asked,
                said=said,
            ),
        )
    elif tls is None or not tls.ok:
        error = (tls.error if tls else "") or probe.error
        error = worded(error) if error else msg(gettext_noop("no handshake"))
        accepted = tls.accepted_versions if tls else []
        text = (
            gettext_noop(
                "%(at)s: the TLS handshake failed (%(error)s); it accepts only %(versions)s"
            )
            if accepted
            else gettext_noop("%(at)s: the TLS handshake failed (%(error)s)")
        )
        found.add("tls_missing", _line(target, text, error=error, versions=accepted))
    if probe.plaintext_auth:
        evidence = worded(probe.plaintext_auth_evidence) or msg(gettext_noop("login before TLS"))
        found.add(
            "plaintext_auth", _line(target, gettext_noop("%(at)s: %(evidence)s"), evidence=evidence)
        )
    if tls and tls.accepted_versions:
        old = [v for v in tls.accepted_versions if v in OUTDATED_VERSIONS]
        if old:
            found.add(
                "tls_outdated",
                _line(target, gettext_noop("%(at)s: accepts %(versions)s"), versions=old),
            )
    if tls and tls.certificate:
        _judge_certificate(smtp, target, tls.certificate, policy, now, found)
    if smtp and probe.open_relay:
        evidence = worded(probe.relay_evidence) or msg(
            gettext_noop("a relay recipient was accepted")
        )
        found.add(
            "open_relay", _line(target, gettext_noop("%(at)s: %(evidence)s"), evidence=evidence)
        )
    if smtp and probe.ehlo_name and probe.ptr_names:
        said = probe.ehlo_name.lower().rstrip(".")
        if said not in [n.lower().rstrip(".") for n in probe.ptr_names]:
            found.add(
                "banner_mismatch",
                _line(
                    target,
                    gettext_noop(
                        "%(at)s: the server calls itself %(name)s, the address's PTR is %(ptr)s"
                    ),
                    name=probe.ehlo_name,
                    ptr=probe.ptr_names,
                ),
            )


def _judge_certificate(smtp: bool, target, cert, policy: HostPolicy, now, found: _Found):
    """Port 25: low, unless an enforced MTA-STS policy (PKIX) or a DANE-TA record (names and
    dates) makes senders require what failed; then high (docs/scoring.md)."""
    enforced = smtp and policy.sts_mode == "enforce"
    escalate = Severity.HIGH if enforced else None
    names_required = escalate or (Severity.HIGH if smtp and policy.dane_ta else None)
    not_after = parse_time(cert.not_after)
    until = not_after.strftime("%Y-%m-%d %H:%M UTC")
    subject = cert.subject or "(no subject)"
    if not_after <= now:
        line = _line(
            target,
            gettext_noop("%(at)s: %(subject)s expired on %(until)s"),
            subject=subject,
            until=until,
        )
        found.add("cert_expired", line, names_required)
    elif not cert.trusted:
        reason = worded(cert.trust_error) or msg(gettext_noop("the chain does not verify"))
        line = _line(
            target,
            gettext_noop("%(at)s: %(subject)s issued by %(issuer)s (%(reason)s)"),
            subject=subject,
            issuer=cert.issuer,
            reason=reason,
        )
        found.add("cert_untrusted", line, escalate)
    if not cert.name_matches:
        names = ", ".join(cert.names) or msg(gettext_noop("no DNS name"))
        line = _line(
            target,
            gettext_noop("%(at)s: the certificate names %(names)s, not %(host)s"),
            names=names,
            host=target.host,
        )
        found.add("cert_name_mismatch", line, names_required)
    if now < not_after and (not_after - now).days < EXPIRING_DAYS:
        severity = Severity.MEDIUM if smtp and (enforced or policy.dane_ta) else None
        line = _line(
            target,
            gettext_noop("%(at)s: %(subject)s expires on %(until)s"),
            subject=subject,
            until=until,
        )
        found.add("cert_expiring", line, severity)


def _findings(category: str, found: _Found, domain: str) -> list[Finding]:
    findings = []
    for kind in ORDER:
        found_lines = found.lines.get(kind)
        if not found_lines:
            continue
        detail = evidence_lines(found_lines)
        findings.append(
            finding(f"{category}.{kind}", detail, domain=domain, severity=found.severity.get(kind))
        )
    return findings
