"""One probe of one Target: what the server at that address and port does, as a ProbeResult.

The main conversation: connect, TLS first on implicit-TLS ports, the greeting, capabilities,
STARTTLS/STLS where offered and the capabilities again under TLS, then (SMTP on port 25 only)
the relay question, and goodbye. Then one connection per other TLS version, each offering only
that version, to learn which versions the server accepts. Then (SMTP) the PTR of the address and
its forward confirmation, through the run's DnsSession.

Every connection goes through `domains.net` (the private-address refusal, hard timeouts, bounded
reads). Nothing here logs in, sends DATA or stores anything.
"""

import contextlib
import datetime
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

import dns.reversename
from django.conf import settings

from domains import net
from domains.dns import DnsSession, LookupFailed
from domains.probes import certs
from domains.probes.protocols import DIALECTS, ProtocolError
from domains.probes.results import ProbeResult, Reach, Service, Target, TlsInfo, TlsMode

TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
NO_ANSWER = "no answer: "
MAX_PTR_NAMES = 5  # forward-confirm at most this many PTR names (each costs lookups)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. Each read has its own; a probe's worst case is their sum over its commands."""

    connect: float = 10.0
    greeting: float = 30.0  # RFC 5321 allows 5 minutes; a server slower than this is broken
    command: float = 15.0


def helo_name(channel: net.LineChannel) -> str:
    """What mailsec says in EHLO: MAILSEC_PROBE_HELO_NAME, else this machine's name when it is a
    fully qualified one (never looked up in DNS), else the address literal of this end of the
    connection (RFC 5321 4.1.3), which strict servers accept where a bare name is refused."""
    configured = getattr(settings, "MAILSEC_PROBE_HELO_NAME", "")
    if configured:
        return configured
    name = socket.gethostname()
    if "." in name.strip("."):
        return name
    local = ipaddress.ip_address(channel.sock.getsockname()[0])
    return f"[IPv6:{local}]" if local.version == 6 else f"[{local}]"


def probe(target: Target, session: DnsSession | None = None, timeouts=Timeouts()) -> ProbeResult:
    started = time.monotonic()
    result = ProbeResult(
        target=target,
        probed_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        duration_ms=0,
        reach=Reach.OK,
    )
    try:
        net.screen_address(target.address)
    except net.TargetRefused as exc:
        result.reach, result.error = Reach.REFUSED_TARGET, str(exc)
    else:
        _main_conversation(target, result, timeouts)
        if result.tls is not None:
            _other_versions(target, result, timeouts)
        if target.service is Service.SMTP and session is not None and result.reach is Reach.OK:
            _names(target, result, session)
    result.duration_ms = round((time.monotonic() - started) * 1000)
    return result


# --- the main conversation --------------------------------------------------------------------


def _open(target: Target, result: ProbeResult, timeouts: Timeouts) -> net.LineChannel | None:
    """A connection, or None with `reach` and `error` saying why there is none."""
    try:
        channel = net.LineChannel.open(target.address, target.port, timeouts.connect)
    except net.Refused as exc:
        result.reach, result.error = Reach.REFUSED, str(exc)
    except net.ConnectTimeout as exc:
        result.reach, result.error = Reach.TIMEOUT, str(exc)
    except net.NetError as exc:
        result.reach, result.error = Reach.ERROR, str(exc)
    else:
        result.connections += 1
        return channel
    return None


def _main_conversation(target: Target, result: ProbeResult, timeouts: Timeouts) -> None:
    channel = _open(target, result, timeouts)
    if channel is None:
        return
    with channel:
        dialect = DIALECTS[target.service](channel, timeouts.command, helo_name(channel))
        try:
            _talk(target, result, channel, dialect, timeouts)
        except net.Closed as exc:
            result.reach, result.error = Reach.RESET, str(exc)
        except (net.NetError, ProtocolError) as exc:
            result.reach, result.error = Reach.ERROR, str(exc)


def _greet(result: ProbeResult, dialect, timeouts: Timeouts) -> bool:
    """The greeting within its time; `reach` says what came instead when it did not."""
    try:
        ok, text = dialect.greeting(timeouts.greeting)
    except net.ReadTimeout:
        result.reach = Reach.NO_GREETING
        result.error = f"connected, but no greeting within {timeouts.greeting:g} s"
        return False
    except net.Closed as exc:
        result.reach, result.error = Reach.RESET, f"closed before any greeting: {exc}"
        return False
    except (net.LineTooLong, ProtocolError) as exc:
        result.reach, result.error = Reach.BAD_GREETING, str(exc)
        return False
    result.greeting = text[:300]
    if not ok:
        result.reach, result.error = Reach.BAD_GREETING, f"the server greeted with {text[:300]!r}"
    return ok


def _talk(target, result: ProbeResult, channel, dialect, timeouts: Timeouts) -> None:
    implicit = target.tls_mode is TlsMode.IMPLICIT
    if implicit and not _handshake(target, result, channel, timeouts):
        result.reach = Reach.TLS_FAILED
        result.error = result.tls.error
        return
    if not _greet(result, dialect, timeouts):
        return
    capabilities = dialect.capabilities()
    if target.service in (Service.SMTP, Service.SUBMISSION):
        result.ehlo_refused = dialect.ehlo_refused
        result.ehlo_name = _banner_name(result.greeting, getattr(dialect, "ehlo_line", ""))
    alive = True
    if implicit:
        result.capabilities_tls = capabilities
    else:
        alive = _upgrade(target, result, channel, dialect, capabilities, timeouts)
    if target.service is Service.SMTP:
        if alive:
            result.open_relay, result.relay_evidence = dialect.relay()
        else:
            _relay_in_the_clear(target, result, timeouts)
    if alive:
        with contextlib.suppress(net.NetError, ProtocolError):
            dialect.quit()


def _upgrade(target, result, channel, dialect, capabilities, timeouts) -> bool:
    """STARTTLS / STLS where offered; the plaintext-login exposure. False when the connection
    can no longer be used (a failed handshake)."""
    result.capabilities_plain = capabilities
    result.starttls_offered = dialect.offers_tls(capabilities)
    exposure = dialect.plaintext_login(capabilities)
    alive = True
    if result.starttls_offered:
        accepted, reply = dialect.request_tls()
        if not accepted:
            error = f"TLS is offered but refused: {reply[:200]}"
            why = "not tried: the server refused to start TLS"
            result.tls = TlsInfo(
                ok=False, error=error, untested_versions=dict.fromkeys(TLS_VERSIONS, why)
            )
        elif _handshake(target, result, channel, timeouts):
            result.capabilities_tls = dialect.capabilities()
        else:
            alive = False
    elif target.service is not Service.SMTP:
        what = "STLS" if target.service is Service.POP3 else "STARTTLS"
        exposure = exposure or f"no {what} offered: any login crosses the network in the clear"
    if exposure:
        result.plaintext_auth, result.plaintext_auth_evidence = True, exposure
    return alive


def _handshake(target: Target, result: ProbeResult, channel, timeouts: Timeouts) -> bool:
    try:
        tls = channel.starttls(target.host, timeouts.command)
    except net.TlsFailed as exc:
        result.tls = TlsInfo(ok=False, error=str(exc))
        return False
    except net.NetTimeout as exc:  # a server that does not answer a handshake: no more tries
        why = "not tried: the first handshake got no answer"
        result.tls = TlsInfo(
            ok=False, error=str(exc), untested_versions=dict.fromkeys(TLS_VERSIONS, why)
        )
        return False
    version = tls.version() or ""
    result.tls = TlsInfo(
        ok=True,
        version=version,
        cipher=(tls.cipher() or ("",))[0],
        accepted_versions=[version],
        certificate=certs.describe(channel.served_chain(), target.host),
    )
    return True


def _relay_in_the_clear(target: Target, result: ProbeResult, timeouts: Timeouts) -> None:
    """The relay question on a new connection without TLS, when the TLS one failed: a spammer
    would not bother with TLS either."""
    scratch = ProbeResult(target=target, probed_at="", duration_ms=0, reach=Reach.OK)
    channel = _open(target, scratch, timeouts)
    if channel is None:
        result.relay_evidence = f"not tested: {scratch.error}"
        return
    result.connections += 1
    with channel:
        dialect = DIALECTS[target.service](channel, timeouts.command, helo_name(channel))
        try:
            if _greet(scratch, dialect, timeouts):
                dialect.capabilities()
                result.open_relay, evidence = dialect.relay()
                result.relay_evidence = f"{evidence} (without TLS, which failed)"
                dialect.quit()
            else:
                result.relay_evidence = f"not tested: {scratch.error}"
        except (net.NetError, ProtocolError) as exc:
            result.relay_evidence = result.relay_evidence or f"not tested: {exc}"


def _banner_name(greeting: str, ehlo_line: str) -> str:
    """The host name a server gives: the first word after the 220 code, else EHLO's."""
    words = greeting.split()
    if len(words) >= 2 and "." in words[1]:
        return words[1].lower().rstrip(".")
    return ehlo_line.split()[0].lower().rstrip(".") if ehlo_line.split() else ""


# --- TLS versions -----------------------------------------------------------------------------


def _other_versions(target: Target, result: ProbeResult, timeouts: Timeouts) -> None:
    """One connection per version not yet seen, offering only that version."""
    info = result.tls
    for name, version in TLS_VERSIONS.items():
        if name in info.accepted_versions or name in info.untested_versions:
            continue
        outcome, chain = _try_version(target, result, version, timeouts)
        if outcome == "accepted":
            info.accepted_versions.append(name)
            if info.certificate is None:  # the default handshake failed: judge this one's
                info.certificate = certs.describe(chain, target.host)
        elif outcome == "refused":
            info.refused_versions.append(name)
        else:
            info.untested_versions[name] = outcome
            if outcome.startswith(NO_ANSWER):  # a stalling server: no more timeouts spent on it
                for rest in TLS_VERSIONS:
                    if rest not in info.accepted_versions + info.refused_versions:
                        info.untested_versions.setdefault(rest, outcome)
    order = list(TLS_VERSIONS)
    info.accepted_versions.sort(key=order.index)


def _try_version(target, result, version, timeouts) -> tuple[str, list[bytes]]:
    """("accepted", chain), ("refused", []) or (why it could not be tried, [])."""
    scratch = ProbeResult(target=target, probed_at="", duration_ms=0, reach=Reach.OK)
    channel = _open(target, scratch, timeouts)
    if channel is None:
        return scratch.error, []
    result.connections += 1
    with channel:
        dialect = DIALECTS[target.service](channel, timeouts.command, helo_name(channel))
        try:
            if target.tls_mode is TlsMode.STARTTLS:
                if not _greet(scratch, dialect, timeouts):
                    return scratch.error, []
                dialect.capabilities()
                accepted, reply = dialect.request_tls()
                if not accepted:
                    return f"TLS refused: {reply[:200]}", []
            channel.starttls(target.host, timeouts.command, version=version)
        except net.TlsFailed as exc:
            if "NO_PROTOCOLS_AVAILABLE" in str(exc):
                return "this machine's OpenSSL cannot offer that version", []
            return "refused", []
        except net.NetTimeout as exc:
            return f"{NO_ANSWER}{exc}", []
        except (net.NetError, ProtocolError) as exc:
            return str(exc), []
        chain = channel.served_chain()
        with contextlib.suppress(net.NetError, ProtocolError):
            dialect.quit()
        return "accepted", chain


# --- names ------------------------------------------------------------------------------------


def _names(target: Target, result: ProbeResult, session: DnsSession) -> None:
    """The PTR names of the address, and whether one of them leads back to it (FCrDNS)."""
    address = ipaddress.ip_address(target.address)
    reverse = dns.reversename.from_address(str(address)).to_text(omit_final_dot=True)
    try:
        answer = session.lookup(reverse, "PTR")
        result.ptr_names = [str(r.target).rstrip(".").lower() for r in answer.rdatas]
        confirmed = False
        for name in result.ptr_names[:MAX_PTR_NAMES]:
            try:
                forward = net.addresses_of(session, name)
            except net.NoAddress:
                continue
            if any(ipaddress.ip_address(a) == address for a in forward):
                confirmed = True
                break
        result.fcrdns = confirmed
    except LookupFailed as exc:
        result.ptr_names, result.fcrdns = [], None
        result.ptr_error = f"could not look up the PTR or its names: {exc}"
