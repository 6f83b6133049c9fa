"""The catalogue of findings: one place for every id, its severity, title and fix.

Ids are stable: pages, alerts and history refer to them. docs/findings.md (and its French
docs/findings.fr.md) lists them (a test keeps them in step). A remediation may use {domain},
filled in with the domain checked.

Titles and fixes are Texts (domains/messages.py): str() gives the active language. The evidence
is a Message, an English template and its arguments: stored as English text (`detail`, what
the JSON outputs and the API give) and as the template (`message`), so that `localized()` can
render it in the reader's language.
"""

from dataclasses import dataclass
from typing import NamedTuple

from django.utils.translation import gettext_noop, pgettext_lazy

from domains.checks.base import Finding, Severity
from domains.messages import Message, Text, fill, reading_english

CRITICAL, HIGH, MEDIUM, LOW, INFO = list(Severity)
SEVERITY_LABELS = {
    CRITICAL: pgettext_lazy("severity", "critical"),
    HIGH: pgettext_lazy("severity", "high"),
    MEDIUM: pgettext_lazy("severity", "medium"),
    LOW: pgettext_lazy("severity", "low"),
    INFO: pgettext_lazy("severity", "info"),
}


@dataclass(frozen=True)
class Kind:
    id: str
    severity: Severity
    title: Text  # str() reads it in the active language
    remediation: Text

    def __post_init__(self):
        for name in ("title", "remediation"):
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Text(getattr(self, name)))

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]

    def fix(self, domain: str = "", *, english: bool = False) -> str:
        """The remediation for this domain, in the active language (or in English)."""
        text = self.remediation.english if english else str(self.remediation)
        return text.replace("{domain}", domain or "example.com")


# --- protocol probes: smtp, submission, imap, pop3 (see docs/scoring.md for the severities) ---
# Each service's name in the titles and fixes (protocol names: the same in every language).
SERVICES = {"smtp": "SMTP (port 25)", "submission": "submission", "imap": "IMAP", "pop3": "POP3"}
# The severities of port 25 are those of opportunistic TLS: senders deliver over a bad certificate
# unless DANE or an enforced MTA-STS policy says otherwise (the verdict raises them then).
PROBE_SEVERITIES = {
    "smtp": {"unreachable": MEDIUM, "cert": LOW, "cert_expiring": LOW},
    "submission": {"unreachable": HIGH, "cert": HIGH, "cert_expiring": MEDIUM},
    "imap": {"unreachable": HIGH, "cert": HIGH, "cert_expiring": MEDIUM},
    "pop3": {"unreachable": HIGH, "cert": HIGH, "cert_expiring": MEDIUM},
}


def _probe_kinds(service: str) -> list[Kind]:
    label = SERVICES[service]
    severity = PROBE_SEVERITIES[service]
    if service == "smtp":
        tls_fix = gettext_noop(
            "Offer STARTTLS on port 25 with a certificate for the MX name (Postfix: "
            "`smtpd_tls_security_level = may` with `smtpd_tls_cert_file`/`smtpd_tls_key_file`)."
        )
        auth_fix = gettext_noop(
            "Do not advertise AUTH before STARTTLS (Postfix: `smtpd_tls_auth_only = yes`); users "
            "should submit on port 465 or 587 anyway."
        )
    else:
        tls_fix = fill(
            gettext_noop(
                "Serve {label} with TLS: implicit TLS on its own port (RFC 8314 recommends it), "
                "or {start} that works, with a certificate for the host name."
            ),
            label=label,
            start="STARTTLS" if service != "pop3" else "STLS",
        )
        auth_fix = {
            "submission": gettext_noop(
                "Advertise AUTH only after STARTTLS (Postfix: `smtpd_tls_auth_only = yes`), or "
                "offer submission on port 465 (implicit TLS) only."
            ),
            "imap": gettext_noop(
                "Refuse logins before TLS: dovecot `auth_allow_cleartext = no` (2.4) or "
                "`disable_plaintext_auth = yes` (2.3), so the server announces LOGINDISABLED."
            ),
            "pop3": gettext_noop(
                "Refuse USER/PASS before TLS: dovecot `auth_allow_cleartext = no` (2.4) or "
                "`disable_plaintext_auth = yes` (2.3)."
            ),
        }[service]
    return [
        Kind(
            f"{service}.unreachable",
            severity["unreachable"],
            {
                "smtp": gettext_noop("An MX host does not answer"),
                "submission": gettext_noop("A submission server does not answer"),
                "imap": gettext_noop("An IMAP server does not answer"),
                "pop3": gettext_noop("A POP3 server does not answer"),
            }[service],
            fill(
                gettext_noop(
                    "Make sure the {label} service listens on every address published for it and "
                    "that no firewall drops or refuses the port; mail servers delivering to you "
                    "cannot connect otherwise."
                )
                if service == "smtp"
                else gettext_noop(
                    "Make sure the {label} service listens on every address published for it and "
                    "that no firewall drops or refuses the port; your users' mail programs "
                    "cannot connect otherwise."
                ),
                label=label,
            ),
        ),
        Kind(
            f"{service}.tls_missing",
            HIGH,
            fill(gettext_noop("{label} without working TLS"), label=label),
            tls_fix,
        ),
        Kind(
            f"{service}.plaintext_auth",
            HIGH,
            fill(gettext_noop("{label} accepts passwords before TLS"), label=label),
            auth_fix,
        ),
        Kind(
            f"{service}.tls_outdated",
            MEDIUM,
            fill(gettext_noop("{label} accepts TLS 1.0 or 1.1"), label=label),
            gettext_noop(
                "TLS 1.0 and 1.1 are deprecated (RFC 8996): accept TLS 1.2 and 1.3 only "
                "(Postfix: `smtpd_tls_protocols = >=TLSv1.2`; dovecot: `ssl_min_protocol = "
                "TLSv1.2`)."
            ),
        ),
        Kind(
            f"{service}.cert_untrusted",
            severity["cert"],
            fill(gettext_noop("{label} certificate is not trusted"), label=label),
            gettext_noop(
                "Serve a certificate from a public CA with its whole chain (the intermediate "
                "certificates too), e.g. from Let's Encrypt; a self-signed certificate is "
                "trusted only through DANE."
            ),
        ),
        Kind(
            f"{service}.cert_name_mismatch",
            severity["cert"],
            fill(gettext_noop("{label} certificate does not name the host"), label=label),
            gettext_noop(
                "Serve a certificate whose subjectAltName lists the host name clients connect to "
                "(the MX or SRV target name), or point the record at a name the certificate has."
            ),
        ),
        Kind(
            f"{service}.cert_expired",
            severity["cert"],
            fill(gettext_noop("{label} certificate has expired"), label=label),
            gettext_noop(
                "Renew the certificate and reload the server; automate renewal (e.g. certbot or "
                "acme.sh with a reload hook)."
            ),
        ),
        Kind(
            f"{service}.cert_expiring",
            severity["cert_expiring"],
            fill(gettext_noop("{label} certificate expires within 14 days"), label=label),
            gettext_noop(
                "Renew the certificate now and reload the server; if renewal is automated, check "
                "why it has not happened (renewals normally run 30 days ahead)."
            ),
        ),
        Kind(
            f"{service}.no_hosts",
            INFO,
            fill(gettext_noop("No {label} server to probe"), label=label),
            {
                "smtp": gettext_noop("Nothing to do: the domain publishes no MX host to probe."),
                "submission": gettext_noop(
                    "Publish where users submit mail (RFC 6186/8314), e.g. "
                    "`_submissions._tcp.{domain}. SRV 0 1 465 mail.{domain}.`, or list the hosts "
                    "under “mail access hosts” on the domain's settings. `SRV 0 0 0 .` says the "
                    "service is not offered."
                ),
                "imap": gettext_noop(
                    "Publish where users read mail (RFC 6186/8314), e.g. `_imaps._tcp.{domain}. "
                    "SRV 0 1 993 mail.{domain}.`, or list the hosts under “mail access hosts” on "
                    "the domain's settings. `SRV 0 0 0 .` says the service is not offered."
                ),
                "pop3": gettext_noop(
                    "Publish it (RFC 6186/8314), e.g. `_pop3s._tcp.{domain}. SRV 0 1 995 "
                    "mail.{domain}.`, or list the hosts under “mail access hosts” on the "
                    "domain's settings. `SRV 0 0 0 .` says the service is not offered."
                ),
            }[service],
        ),
    ]


PROBE_KINDS = [
    *_probe_kinds("smtp"),
    Kind(
        "smtp.open_relay",
        CRITICAL,
        gettext_noop("An MX host is an open relay"),
        gettext_noop(
            "The server accepted a recipient in another domain from an unauthenticated sender: "
            "anyone can send spam through it, and it will be blocklisted. Relay only for your "
            "own domains and for authenticated users (Postfix: `smtpd_relay_restrictions = "
            "permit_mynetworks permit_sasl_authenticated reject_unauth_destination`, with "
            "`mynetworks` limited to your own hosts)."
        ),
    ),
    Kind(
        "smtp.banner_mismatch",
        LOW,
        gettext_noop("The SMTP banner does not name the server's address"),
        gettext_noop(
            "Make the name in the 220 greeting and the EHLO reply the one the address's PTR "
            "record gives (Postfix: `myhostname`), and make that name resolve back to the "
            "address."
        ),
    ),
    *_probe_kinds("submission"),
    *_probe_kinds("imap"),
    *_probe_kinds("pop3"),
    Kind(
        "probe.not_tested",
        INFO,
        gettext_noop("Could not test the mail servers"),
        gettext_noop(
            "Nothing to fix on the servers if they work for others. Outbound port 25 is blocked "
            "in many hosting networks: run mailsec's probes from a machine that can reach port "
            "25 (see the README, “Protocol probes”)."
        ),
    ),
]

KINDS = [
    # --- mx ---------------------------------------------------------------------------------
    Kind(
        "mx.missing",
        MEDIUM,
        gettext_noop("No MX record"),
        gettext_noop(
            "Without MX, senders deliver to the domain's A/AAAA address (RFC 5321 5.1). Publish "
            "the mail servers, for example: `{domain}. MX 10 mx1.{domain}.` If the domain "
            "receives no mail, publish a null MX instead: `{domain}. MX 0 .`"
        ),
    ),
    Kind(
        "mx.null",
        INFO,
        gettext_noop("Null MX: the domain accepts no mail"),
        gettext_noop("Nothing to do if the domain really receives no mail (RFC 7505)."),
    ),
    Kind(
        "mx.null_mixed",
        HIGH,
        gettext_noop("Null MX published together with other MX records"),
        gettext_noop(
            "RFC 7505 forbids other MX records beside `MX 0 .`: remove either the null MX or the "
            "others."
        ),
    ),
    Kind(
        "mx.host_unresolvable",
        HIGH,
        gettext_noop("An MX host has no address"),
        gettext_noop(
            "Give the host an A and/or AAAA record, or point the MX at a host that has one."
        ),
    ),
    Kind(
        "mx.cname",
        MEDIUM,
        gettext_noop("An MX record points to a CNAME"),
        gettext_noop(
            "MX targets must be host names with A/AAAA records, not aliases (RFC 2181 10.3): "
            "point the MX at the canonical name."
        ),
    ),
    Kind(
        "mx.ip_literal",
        HIGH,
        gettext_noop("An MX record points to an IP address"),
        gettext_noop(
            "An MX target must be a host name (RFC 5321 5.1). Give the server a name, for "
            "example: `mx1.{domain}. A 192.0.2.25` Then point the MX at that name: `{domain}. MX "
            "10 mx1.{domain}.`"
        ),
    ),
    Kind(
        "mx.no_ipv6",
        LOW,
        gettext_noop("No MX host is reachable over IPv6"),
        gettext_noop(
            "Add AAAA records for the mail servers so IPv6-only senders can deliver; if a mail "
            "provider runs them, only the provider can (it weighs nothing then)."
        ),
    ),
    Kind(
        "mx.ptr_mismatch",
        LOW,
        gettext_noop("An MX address lacks forward-confirmed reverse DNS"),
        gettext_noop(
            "Ask the address's owner (your hosting or ISP) to set a PTR record naming the host, "
            "and make that name resolve back to the same address."
        ),
    ),
    # --- spf --------------------------------------------------------------------------------
    Kind(
        "spf.missing",
        CRITICAL,
        gettext_noop("No SPF record"),
        gettext_noop(
            "Publish the servers allowed to send for the domain, for example: `{domain}. TXT "
            '"v=spf1 mx include:_spf.example.net -all"` A domain that sends no mail publishes '
            'this instead: `{domain}. TXT "v=spf1 -all"`'
        ),
    ),
    Kind(
        "spf.multiple_records",
        CRITICAL,
        gettext_noop("Several SPF records"),
        gettext_noop(
            "Receivers treat several `v=spf1` records at one name as a permanent error (RFC 7208 "
            "4.5), also at an included or redirected name (the evidence shows the path): merge "
            "them into one record."
        ),
    ),
    Kind(
        "spf.syntax_error",
        CRITICAL,
        gettext_noop("The SPF record has a syntax error"),
        gettext_noop(
            "Fix the quoted term (RFC 7208 12 gives the grammar) so that receivers can evaluate "
            "the record; until then they treat it as a permanent error, as if there were none. "
            "An error in an included record breaks the including one too."
        ),
    ),
    Kind(
        "spf.too_many_lookups",
        HIGH,
        gettext_noop("SPF needs more than 10 DNS lookups"),
        gettext_noop(
            "Receivers stop at 10 DNS-querying terms (include, a, mx, ptr, exists, redirect; RFC "
            "7208 4.6.4) and fail the check: drop unused includes, or replace `a`/`mx` with "
            "`ip4:`/`ip6:` ranges."
        ),
    ),
    Kind(
        "spf.too_many_void_lookups",
        HIGH,
        gettext_noop("SPF has more than 2 void lookups"),
        gettext_noop(
            "Lookups that return no records count against a limit of 2 (RFC 7208 4.6.4): remove "
            "includes and mechanisms that point at names without records. For IPv6 senders an "
            "`a:` whose host has no AAAA record is one: use `ip4:` for IPv4-only hosts (medium "
            "when only IPv6 senders are over the limit)."
        ),
    ),
    Kind(
        "spf.include_loop",
        HIGH,
        gettext_noop("SPF includes or redirects loop"),
        gettext_noop(
            "An include or redirect leads back to a record already being evaluated (the evidence "
            "shows the path): remove the loop."
        ),
    ),
    Kind(
        "spf.include_not_found",
        HIGH,
        gettext_noop("An SPF include has no SPF record"),
        gettext_noop(
            "An `include:` whose target publishes no SPF record is a permanent error (RFC 7208 "
            "5.2): remove it or fix the target."
        ),
    ),
    Kind(
        "spf.redirect_not_found",
        HIGH,
        gettext_noop("An SPF redirect leads to a domain without an SPF record"),
        gettext_noop(
            "A `redirect=` to a domain that publishes no SPF record is a permanent error (RFC "
            "7208 6.1): point it at the record that lists your senders."
        ),
    ),
    Kind(
        "spf.too_many_mx",
        HIGH,
        gettext_noop("An SPF `mx` names a domain with more than 10 MX records"),
        gettext_noop(
            "Receivers evaluate at most 10 MX hosts per `mx` term and return a permanent error "
            "beyond (RFC 7208 4.6.4): list the senders with `ip4:`/`ip6:` or `include:` instead."
        ),
    ),
    Kind(
        "spf.all_pass",
        CRITICAL,
        gettext_noop("SPF allows the whole internet (+all)"),
        gettext_noop(
            "`+all` lets every server send as the domain, whether it stands in the record or is "
            "reached through the `include:`/`redirect=` path in the evidence (so does a term "
            "matching every address, such as `ip4:0.0.0.0/0`). End the record with `-all` (or "
            "`~all` while you find all senders), and include only records that list their own "
            "servers."
        ),
    ),
    Kind(
        "spf.neutral_all",
        CRITICAL,
        gettext_noop("SPF ends with ?all"),
        gettext_noop(
            "`?all` says nothing about other senders, so receivers treat it like no SPF at all "
            "(RFC 7208 8.2): end with `-all` or `~all`."
        ),
    ),
    Kind(
        "spf.no_all",
        CRITICAL,
        gettext_noop("SPF has neither `all` nor `redirect`"),
        gettext_noop(
            "Without a final `all`, unlisted senders get a neutral result: end the record with "
            "`-all` (or `~all`)."
        ),
    ),
    Kind(
        "spf.ptr_mechanism",
        LOW,
        gettext_noop("SPF uses the ptr mechanism (or the %{p} macro)"),
        gettext_noop(
            "`ptr` is slow, unreliable and discouraged (RFC 7208 5.5): list the servers with "
            "`ip4:`, `ip6:`, `a` or `include:` instead."
        ),
    ),
    Kind(
        "spf.record_too_long",
        LOW,
        gettext_noop("The SPF record is very long"),
        gettext_noop(
            "Answers over 512 bytes may need TCP and fail with some receivers: shorten the "
            "record, e.g. by moving ranges into an included record."
        ),
    ),
    # --- dmarc ------------------------------------------------------------------------------
    Kind(
        "dmarc.missing",
        HIGH,
        gettext_noop("No DMARC record"),
        gettext_noop(
            'Publish a policy, starting with monitoring: `_dmarc.{domain}. TXT "v=DMARC1; '
            'p=none; rua=mailto:dmarc@{domain}"` Once the reports show that all your senders '
            "pass, move to `p=quarantine`, then to `p=reject`."
        ),
    ),
    Kind(
        "dmarc.multiple_records",
        HIGH,
        gettext_noop("Several DMARC records"),
        gettext_noop(
            "Receivers ignore DMARC when `_dmarc.{domain}` has several `v=DMARC1` records: keep "
            "one."
        ),
    ),
    Kind(
        "dmarc.syntax_error",
        HIGH,
        gettext_noop("The DMARC record is invalid"),
        gettext_noop(
            "Receivers ignore an invalid DMARC record, as if there were none. Fix it so that it "
            "reads like this: `v=DMARC1; p=reject; rua=mailto:dmarc@{domain}`"
        ),
    ),
    Kind(
        "dmarc.policy_none",
        HIGH,
        gettext_noop("DMARC policy is p=none (monitoring only)"),
        gettext_noop(
            "`p=none` asks receivers to deliver forged mail anyway: against spoofing it is no "
            "better than no DMARC, only with reports. Once the reports show your senders pass, "
            "move to `p=quarantine`, then `p=reject`."
        ),
    ),
    Kind(
        "dmarc.pct_partial",
        LOW,
        gettext_noop("DMARC applies to only part of the mail (pct below 100)"),
        gettext_noop("Raise `pct` to 100 (or remove it) once the policy has proved itself."),
    ),
    Kind(
        "dmarc.subdomain_policy_weaker",
        LOW,
        gettext_noop("Subdomains get a weaker DMARC policy"),
        gettext_noop(
            "`sp=` or `np=` is weaker than `p=`, so spoofed subdomains get through: set them to "
            "the same policy or remove them."
        ),
    ),
    Kind(
        "dmarc.no_rua",
        LOW,
        gettext_noop("DMARC asks for no aggregate reports"),
        gettext_noop(
            "Add `rua=mailto:dmarc@{domain}` so receivers tell you who sends in your name."
        ),
    ),
    Kind(
        "dmarc.rua_unauthorized",
        MEDIUM,
        gettext_noop("An outside DMARC report address has not agreed"),
        gettext_noop(
            "Reports to another domain are sent only if it publishes "
            '`{domain}._report._dmarc.<that domain>. TXT "v=DMARC1"` (RFC 7489 7.1): ask its '
            "owner to publish it, or use an address in your domain."
        ),
    ),
    Kind(
        "dmarc.inherited",
        INFO,
        gettext_noop("DMARC policy comes from the organisational domain"),
        gettext_noop(
            "The domain has no record of its own, so the parent's policy applies. Publish one at "
            "`_dmarc.{domain}` if it should differ."
        ),
    ),
    # --- dkim -------------------------------------------------------------------------------
    Kind(
        "dkim.no_selector_found",
        MEDIUM,
        gettext_noop("No DKIM key found"),
        gettext_noop(
            "Sign outgoing mail with DKIM and publish the key, for example: "
            '`sel1._domainkey.{domain}. TXT "v=DKIM1; k=rsa; p=<base64 public key>"` If you sign '
            "with a selector mailsec does not know, add it to this domain's DKIM selectors."
        ),
    ),
    Kind(
        "dkim.weak_key",
        MEDIUM,
        gettext_noop("A DKIM key is shorter than 2048 bits"),
        gettext_noop(
            "Generate a 2048-bit RSA key (or Ed25519 alongside), publish it under a new "
            "selector, switch signing to it, then revoke the old key."
        ),
    ),
    Kind(
        "dkim.testing_mode",
        LOW,
        gettext_noop("A DKIM key is in testing mode (t=y)"),
        gettext_noop(
            "Receivers may treat signatures as unsigned: remove `t=y` once signing works."
        ),
    ),
    Kind(
        "dkim.revoked_key",
        INFO,
        gettext_noop("A DKIM selector is revoked (empty p=)"),
        gettext_noop(
            "Nothing to do if the key was retired on purpose; otherwise publish the key again."
        ),
    ),
    Kind(
        "dkim.sha1_only",
        MEDIUM,
        gettext_noop("A DKIM key allows only SHA-1, which verifiers refuse"),
        gettext_noop(
            "Verifiers must not accept rsa-sha1 signatures (RFC 8301 3.1), so every signature "
            "made with this key fails: sign with rsa-sha256 and remove `h=sha1` from the key "
            "record (or list `h=sha256`)."
        ),
    ),
    Kind(
        "dkim.invalid_key",
        MEDIUM,
        gettext_noop("A DKIM key record cannot be used"),
        gettext_noop(
            "Publish the key again as `v=DKIM1; k=rsa; p=<base64 public key>`; a broken record "
            "fails every signature made with that selector."
        ),
    ),
    # --- mta_sts ----------------------------------------------------------------------------
    Kind(
        "mta_sts.missing",
        LOW,
        gettext_noop("No MTA-STS policy"),
        gettext_noop(
            'Publish `_mta-sts.{domain}. TXT "v=STSv1; id=20240101"` and serve '
            "https://mta-sts.{domain}/.well-known/mta-sts.txt (version: STSv1, mode: testing, "
            "one mx line per MX host, max_age: 604800) so that senders insist on TLS."
        ),
    ),
    Kind(
        "mta_sts.record_invalid",
        MEDIUM,
        gettext_noop("The MTA-STS record is invalid"),
        gettext_noop("The record must read like `v=STSv1; id=20240101` (RFC 8461 3.1)."),
    ),
    Kind(
        "mta_sts.policy_unreachable",
        HIGH,
        gettext_noop("The MTA-STS policy cannot be fetched"),
        gettext_noop(
            "Senders that cached your policy keep using it, others get none: serve "
            "https://mta-sts.{domain}/.well-known/mta-sts.txt with a valid certificate."
        ),
    ),
    Kind(
        "mta_sts.policy_invalid",
        MEDIUM,
        gettext_noop("The MTA-STS policy is invalid"),
        gettext_noop(
            "The policy needs `version: STSv1`, `mode`, `max_age` and an `mx` line per server "
            "(RFC 8461 3.2)."
        ),
    ),
    Kind(
        "mta_sts.mode_testing",
        LOW,
        gettext_noop("MTA-STS is in testing mode"),
        gettext_noop(
            "In testing mode senders deliver even when TLS fails: switch to `mode: enforce` once "
            "the TLS reports are clean."
        ),
    ),
    Kind(
        "mta_sts.mode_none",
        LOW,
        gettext_noop("MTA-STS mode is none"),
        gettext_noop("`mode: none` withdraws the policy: use `mode: enforce` (or `testing`)."),
    ),
    Kind(
        "mta_sts.max_age_short",
        LOW,
        gettext_noop("The MTA-STS max_age is short"),
        gettext_noop(
            "A short max_age leaves senders without the policy between fetches: use at least "
            "604800 (one week); RFC 8461 3.2 advises weeks or more."
        ),
    ),
    Kind(
        "mta_sts.mx_mismatch",
        HIGH,
        gettext_noop("An MX host is not covered by the MTA-STS policy"),
        gettext_noop(
            "Senders that enforce the policy refuse to deliver to an MX it does not list: add an "
            "`mx:` line for every MX host (wildcards like `*.{domain}` allowed)."
        ),
    ),
    Kind(
        "mta_sts.mx_cert_invalid",
        HIGH,
        gettext_noop("An MX host's certificate fails the MTA-STS policy"),
        gettext_noop(
            "Under an MTA-STS policy senders require a certificate that chains to a public CA, "
            "has not expired and names the MX host (RFC 8461 4.2); in enforce mode they refuse "
            "to deliver otherwise. Install such a certificate on every MX (e.g. from Let's "
            "Encrypt), or set `mode: testing` until it is."
        ),
    ),
    # --- tls_rpt ----------------------------------------------------------------------------
    Kind(
        "tls_rpt.missing",
        LOW,
        gettext_noop("No SMTP TLS reporting (TLS-RPT) record"),
        gettext_noop(
            'Publish `_smtp._tls.{domain}. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"` to '
            "learn when senders cannot reach you over TLS."
        ),
    ),
    Kind(
        "tls_rpt.invalid",
        MEDIUM,
        gettext_noop("The TLS-RPT record is invalid"),
        gettext_noop(
            "The record must read like `v=TLSRPTv1; rua=mailto:tlsrpt@{domain}` (RFC 8460 3)."
        ),
    ),
    # --- bimi -------------------------------------------------------------------------------
    Kind(
        "bimi.missing",
        INFO,
        gettext_noop("No BIMI record"),
        gettext_noop(
            'Optional: publish `default._bimi.{domain}. TXT "v=BIMI1; '
            'l=https://{domain}/logo.svg"` to show your logo in supporting mail clients (it '
            "needs DMARC enforcement)."
        ),
    ),
    Kind(
        "bimi.invalid",
        LOW,
        gettext_noop("The BIMI record is invalid"),
        gettext_noop("The record must read like `v=BIMI1; l=https://{domain}/logo.svg`."),
    ),
    Kind(
        "bimi.dmarc_not_enforced",
        LOW,
        gettext_noop("BIMI without an enforcing DMARC policy"),
        gettext_noop(
            "Mail clients show the logo only for mail protected by DMARC `p=quarantine` or "
            "`p=reject` applied to all mail (no `pct` below 100): enforce DMARC at "
            "`_dmarc.{domain}`, or remove the BIMI record."
        ),
    ),
    # --- dnssec -----------------------------------------------------------------------------
    Kind(
        "dnssec.unsigned",
        MEDIUM,
        gettext_noop("The domain is not signed with DNSSEC"),
        gettext_noop(
            "Enable DNSSEC at your DNS host and publish the DS record at your registrar: it "
            "protects MX and policy records from forgery and makes DANE possible."
        ),
    ),
    Kind(
        "dnssec.bogus",
        CRITICAL,
        gettext_noop("DNSSEC validation fails"),
        gettext_noop(
            "Validating resolvers cannot resolve this zone at all, so mail to it fails. Fix the "
            "chain: the DS at the parent must match a key that signs the zone, with valid "
            "signatures."
        ),
    ),
    Kind(
        "dnssec.mx_unsigned",
        LOW,
        gettext_noop("An MX host's zone is not signed"),
        gettext_noop(
            "Without DNSSEC on the mail servers' zone, DANE cannot protect deliveries to them: "
            "sign it; if a mail provider runs them, only the provider can (it weighs nothing "
            "then)."
        ),
    ),
    Kind(
        "dnssec.mx_bogus",
        HIGH,
        gettext_noop("DNSSEC validation fails for an MX host's zone"),
        gettext_noop(
            "Validating senders cannot find the mail server: fix the DNSSEC chain of that zone."
        ),
    ),
    # --- dane -------------------------------------------------------------------------------
    Kind(
        "dane.missing",
        LOW,
        gettext_noop("No DANE TLSA record for an MX host"),
        gettext_noop(
            "Publish `_25._tcp.<mx host>. TLSA 3 1 1 <sha256 of the server's public key>` in the "
            "signed zone of the MX host; if a mail provider runs it, only the provider can (it "
            "weighs nothing then)."
        ),
    ),
    Kind(
        "dane.without_dnssec",
        MEDIUM,
        gettext_noop("TLSA records without DNSSEC"),
        gettext_noop(
            "TLSA records count only in a DNSSEC-signed zone: sign the zone, or remove them."
        ),
    ),
    Kind(
        "dane.bad_parameters",
        MEDIUM,
        gettext_noop("A TLSA record has unsuitable parameters"),
        gettext_noop(
            "For SMTP use `3 1 1` (DANE-EE, public key, SHA-256) or `2 1 1` (DANE-TA); usages "
            "0/1 and full-data matching (0) are not meant for SMTP (RFC 7672 3.1)."
        ),
    ),
    Kind(
        "dane.mismatch",
        CRITICAL,
        gettext_noop("The TLSA records do not match the certificate served"),
        gettext_noop(
            "DANE senders refuse to deliver to a server whose certificate chain matches none of "
            "its TLSA records (RFC 7672 2.2). Publish a TLSA record for the certificate really "
            "served (`3 1 1` with the SHA-256 of its public key), or serve the certificate the "
            "records name; when renewing, publish the new key's record before switching."
        ),
    ),
    *PROBE_KINDS,
    # --- dns --------------------------------------------------------------------------------
    Kind(
        "dns.lookup_failed",
        HIGH,
        gettext_noop("A DNS lookup failed"),
        gettext_noop(
            "Could not test. If this persists, check that every name server of the zone answers "
            "(no timeouts, SERVFAIL or REFUSED); validating resolvers see the same failure."
        ),
    ),
    Kind(
        "dns.partial_lookup_failed",
        INFO,
        gettext_noop("A DNS lookup failed: some verdicts were not tested"),
        gettext_noop(
            "The categories keep the verdicts their answered lookups support; the ones named "
            "were not tested. If this persists, check that every name server of the zone answers "
            "(no timeouts, SERVFAIL or REFUSED)."
        ),
    ),
    Kind(
        "dns.resolver_broken",
        HIGH,
        gettext_noop("The resolver cannot be trusted: nothing was tested"),
        gettext_noop(
            "Not the domain's fault. Point mailsec at a resolver that answers truthfully and "
            "hands over DNSSEC signatures (`MAILSEC_DNS_NAMESERVERS`, or `--nameserver` for "
            "`check_domain`): a captive portal, a filtering resolver or a middlebox that strips "
            "signatures makes every domain look broken."
        ),
    ),
]

CATALOGUE: dict[str, Kind] = {kind.id: kind for kind in KINDS}


def finding(
    kind_id: str,
    detail: "str | Message",
    *,
    domain: str = "",
    severity: Severity | None = None,
    category: str = "",
) -> Finding:
    """A finding of the catalogue's kind, with its evidence. `category` overrides the id's
    prefix (dns.lookup_failed belongs to the category that could not be tested). The texts
    are stored in English; `message` keeps what localized() needs to translate them."""
    kind = CATALOGUE[kind_id]
    message = {"domain": domain}
    if isinstance(detail, Message):
        message |= detail.as_json()
        detail = detail.english()
    return Finding(
        id=kind.id,
        category=category or kind.category,
        severity=severity or kind.severity,
        title=kind.title.english,
        detail=sentence(detail),
        remediation=kind.fix(domain, english=True),
        message=message,
    )


def add_note(f: Finding, note: Message) -> None:
    """Append a sentence to a finding's evidence (scoring.py: why its severity changed)."""
    f.detail = sentence(f.detail) + " " + note.english()
    f.message = {
        **(f.message or {}),
        "notes": [*(f.message or {}).get("notes", []), note.as_json()],
    }


class Texts(NamedTuple):
    title: str
    detail: str
    remediation: str


def localized(f, domain: str = "") -> Texts:
    """A finding's title, evidence and fix in the active language. `f` is a stored Finding
    (domains.models), one of a run (checks.base), or its dict. In English, the texts as they
    were stored (the run's record). In another language, title and fix come from the catalogue
    by id, the evidence from its template; evidence stored before it had a template stays as
    stored (English), and so do all the texts of a kind the catalogue no longer has."""
    get = f.get if isinstance(f, dict) else lambda name, default=None: getattr(f, name, default)
    if reading_english():
        return Texts(get("title"), get("detail"), get("remediation"))
    kind_id = get("kind") or get("id")
    message = get("message") or {}
    domain = message.get("domain") or domain
    kind = CATALOGUE.get(kind_id)
    title = str(kind.title) if kind else get("title")
    remediation = kind.fix(domain) if kind and domain else get("remediation")
    detail = get("detail")
    if message.get("text"):
        try:
            parts = [Message(message["text"], message.get("args") or {}).render()]
            parts += [
                Message(n["text"], n.get("args") or {}).render() for n in message.get("notes", [])
            ]
            detail = " ".join([sentence(parts[0]), *parts[1:]])
        except (KeyError, TypeError, ValueError):
            pass  # a template whose arguments changed since: the English stored is still true
    return Texts(title, detail, remediation)


def sentence(text: str) -> str:
    """Evidence ending as a sentence: a full stop added unless one (or ? !) ends it already, so
    that a note appended after it (scoring.py) starts a sentence of its own."""
    text = text.strip().rstrip(",;:").rstrip()
    return text if not text or text.endswith((".", "?", "!", ".)")) else text + "."
