"""The catalogue of findings: one place for every id, its severity, title and fix.

Ids are stable: pages, alerts and history refer to them. docs/findings.md lists them (a test
keeps the two in step). A remediation may use {placeholders} filled in from the finding's
evidence, such as {domain}.
"""

from dataclasses import dataclass

from domains.checks.base import Finding, Severity

CRITICAL, HIGH, MEDIUM, LOW, INFO = list(Severity)


@dataclass(frozen=True)
class Kind:
    id: str
    severity: Severity
    title: str
    remediation: str

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]


# --- protocol probes: smtp, submission, imap, pop3 (see docs/scoring.md for the severities) ---
# What each service is to its users, for the titles and fixes.
SERVICES = {
    "smtp": ("SMTP (port 25)", "an MX host", "mail servers delivering to you"),
    "submission": ("submission", "a submission server", "your users' mail programs"),
    "imap": ("IMAP", "an IMAP server", "your users' mail programs"),
    "pop3": ("POP3", "a POP3 server", "your users' mail programs"),
}
# The severities of port 25 are those of opportunistic TLS: senders deliver over a bad certificate
# unless DANE or an enforced MTA-STS policy says otherwise (the verdict raises them then).
PROBE_SEVERITIES = {
    "smtp": {"unreachable": MEDIUM, "cert": LOW, "cert_expiring": LOW},
    "submission": {"unreachable": HIGH, "cert": HIGH, "cert_expiring": MEDIUM},
    "imap": {"unreachable": HIGH, "cert": HIGH, "cert_expiring": MEDIUM},
    "pop3": {"unreachable": HIGH, "cert": HIGH, "cert_expiring": MEDIUM},
}


def _probe_kinds(service: str) -> list[Kind]:
    label, server, users = SERVICES[service]
    severity = PROBE_SEVERITIES[service]
    start = "STARTTLS" if service != "pop3" else "STLS"
    if service == "smtp":
        tls_fix = (
            "Offer STARTTLS on port 25 with a certificate for the MX name (Postfix: "
            "`smtpd_tls_security_level = may` with `smtpd_tls_cert_file`/`smtpd_tls_key_file`)."
        )
        auth_fix = (
            "Do not advertise AUTH before STARTTLS (Postfix: `smtpd_tls_auth_only = yes`); "
            "users should submit on port 465 or 587 anyway."
        )
    else:
        tls_fix = (
            f"Serve {label} with TLS: implicit TLS on its own port (RFC 8314 recommends it), or "
            f"{start} that works, with a certificate for the host name."
        )
        auth_fix = {
            "submission": "Advertise AUTH only after STARTTLS (Postfix: `smtpd_tls_auth_only = "
            "yes`), or offer submission on port 465 (implicit TLS) only.",
            "imap": "Refuse logins before TLS: dovecot `auth_allow_cleartext = no` (2.4) or "
            "`disable_plaintext_auth = yes` (2.3), so the server announces LOGINDISABLED.",
            "pop3": "Refuse USER/PASS before TLS: dovecot `auth_allow_cleartext = no` (2.4) or "
            "`disable_plaintext_auth = yes` (2.3).",
        }[service]
    return [
        Kind(
            f"{service}.unreachable",
            severity["unreachable"],
            f"{server.capitalize()} does not answer",
            f"Make sure the {label} service listens on every address published for it and that "
            f"no firewall drops or refuses the port; {users} cannot connect otherwise.",
        ),
        Kind(
            f"{service}.tls_missing",
            HIGH,
            f"{label} without working TLS",
            tls_fix,
        ),
        Kind(
            f"{service}.plaintext_auth",
            HIGH,
            f"{label} accepts passwords before TLS",
            auth_fix,
        ),
        Kind(
            f"{service}.tls_outdated",
            MEDIUM,
            f"{label} accepts TLS 1.0 or 1.1",
            "TLS 1.0 and 1.1 are deprecated (RFC 8996): accept TLS 1.2 and 1.3 only (Postfix: "
            "`smtpd_tls_protocols = >=TLSv1.2`; dovecot: `ssl_min_protocol = TLSv1.2`).",
        ),
        Kind(
            f"{service}.cert_untrusted",
            severity["cert"],
            f"{label} certificate is not trusted",
            "Serve a certificate from a public CA with its whole chain (the intermediate "
            "certificates too), e.g. from Let's Encrypt; a self-signed certificate is trusted "
            "only through DANE.",
        ),
        Kind(
            f"{service}.cert_name_mismatch",
            severity["cert"],
            f"{label} certificate does not name the host",
            "Serve a certificate whose subjectAltName lists the host name clients connect to "
            "(the MX or SRV target name), or point the record at a name the certificate has.",
        ),
        Kind(
            f"{service}.cert_expired",
            severity["cert"],
            f"{label} certificate has expired",
            "Renew the certificate and reload the server; automate renewal (e.g. certbot or "
            "acme.sh with a reload hook).",
        ),
        Kind(
            f"{service}.cert_expiring",
            severity["cert_expiring"],
            f"{label} certificate expires within 14 days",
            "Renew the certificate now and reload the server; if renewal is automated, check "
            "why it has not happened (renewals normally run 30 days ahead).",
        ),
        Kind(
            f"{service}.no_hosts",
            INFO,
            f"No {label} server to probe",
            {
                "smtp": "Nothing to do: the domain publishes no MX host to probe.",
                "submission": "Publish where users submit mail (RFC 6186/8314), e.g. "
                "`_submissions._tcp.{domain}. SRV 0 1 465 mail.{domain}.`, or list the hosts "
                "under “mail access hosts” on the domain's settings. `SRV 0 0 0 .` says the "
                "service is not offered.",
                "imap": "Publish where users read mail (RFC 6186/8314), e.g. "
                "`_imaps._tcp.{domain}. SRV 0 1 993 mail.{domain}.`, or list the hosts under "
                "“mail access hosts” on the domain's settings. `SRV 0 0 0 .` says the "
                "service is not offered.",
                "pop3": "Publish it (RFC 6186/8314), e.g. `_pop3s._tcp.{domain}. SRV 0 1 995 "
                "mail.{domain}.`, or list the hosts under “mail access hosts” on the domain's "
                "settings. `SRV 0 0 0 .` says the service is not offered.",
            }[service],
        ),
    ]


PROBE_KINDS = [
    *_probe_kinds("smtp"),
    Kind(
        "smtp.open_relay",
        CRITICAL,
        "An MX host is an open relay",
        "The server accepted a recipient in another domain from an unauthenticated sender: "
        "anyone can send spam through it, and it will be blocklisted. Relay only for your own "
        "domains and for authenticated users (Postfix: `smtpd_relay_restrictions = "
        "permit_mynetworks permit_sasl_authenticated reject_unauth_destination`, with "
        "`mynetworks` limited to your own hosts).",
    ),
    Kind(
        "smtp.banner_mismatch",
        LOW,
        "The SMTP banner does not name the server's address",
        "Make the name in the 220 greeting and the EHLO reply the one the address's PTR record "
        "gives (Postfix: `myhostname`), and make that name resolve back to the address.",
    ),
    *_probe_kinds("submission"),
    *_probe_kinds("imap"),
    *_probe_kinds("pop3"),
    Kind(
        "probe.not_tested",
        INFO,
        "Could not test the mail servers",
        "Nothing to fix on the servers if they work for others. Outbound port 25 is blocked in "
        "many hosting networks: run mailsec's probes from a machine that can reach port 25 (see "
        "the README, “Protocol probes”).",
    ),
]

KINDS = [
    # --- mx ---------------------------------------------------------------------------------
    Kind(
        "mx.missing",
        MEDIUM,
        "No MX record",
        "Without MX, senders deliver to the domain's A/AAAA address (RFC 5321 5.1). Publish the "
        "mail servers, for example: `{domain}. MX 10 mx1.{domain}.` If the domain receives no "
        "mail, publish a null MX instead: `{domain}. MX 0 .`",
    ),
    Kind(
        "mx.null",
        INFO,
        "Null MX: the domain accepts no mail",
        "Nothing to do if the domain really receives no mail (RFC 7505).",
    ),
    Kind(
        "mx.null_mixed",
        HIGH,
        "Null MX published together with other MX records",
        "RFC 7505 forbids other MX records beside `MX 0 .`: remove either the null MX or the "
        "others.",
    ),
    Kind(
        "mx.host_unresolvable",
        HIGH,
        "An MX host has no address",
        "Give the host an A and/or AAAA record, or point the MX at a host that has one.",
    ),
    Kind(
        "mx.cname",
        MEDIUM,
        "An MX record points to a CNAME",
        "MX targets must be host names with A/AAAA records, not aliases (RFC 2181 10.3): point "
        "the MX at the canonical name.",
    ),
    Kind(
        "mx.ip_literal",
        HIGH,
        "An MX record points to an IP address",
        "An MX target must be a host name (RFC 5321 5.1). Give the server a name, for example: "
        "`mx1.{domain}. A 192.0.2.25` Then point the MX at that name: "
        "`{domain}. MX 10 mx1.{domain}.`",
    ),
    Kind(
        "mx.no_ipv6",
        LOW,
        "No MX host is reachable over IPv6",
        "Add AAAA records for the mail servers so IPv6-only senders can deliver; if a mail "
        "provider runs them, only the provider can (it weighs nothing then).",
    ),
    Kind(
        "mx.ptr_mismatch",
        LOW,
        "An MX address lacks forward-confirmed reverse DNS",
        "Ask the address's owner (your hosting or ISP) to set a PTR record naming the host, and "
        "make that name resolve back to the same address.",
    ),
    # --- spf --------------------------------------------------------------------------------
    Kind(
        "spf.missing",
        CRITICAL,
        "No SPF record",
        "Publish the servers allowed to send for the domain, for example: "
        '`{domain}. TXT "v=spf1 mx include:_spf.example.net -all"` A domain that sends no '
        'mail publishes this instead: `{domain}. TXT "v=spf1 -all"`',
    ),
    Kind(
        "spf.multiple_records",
        CRITICAL,
        "Several SPF records",
        "Receivers treat several `v=spf1` records at one name as a permanent error (RFC 7208 "
        "4.5), also at an included or redirected name (the evidence shows the path): merge "
        "them into one record.",
    ),
    Kind(
        "spf.syntax_error",
        CRITICAL,
        "The SPF record has a syntax error",
        "Fix the quoted term (RFC 7208 12 gives the grammar) so that receivers can evaluate the "
        "record; until then they treat it as a permanent error, as if there were none. An "
        "error in an included record breaks the including one too.",
    ),
    Kind(
        "spf.too_many_lookups",
        HIGH,
        "SPF needs more than 10 DNS lookups",
        "Receivers stop at 10 DNS-querying terms (include, a, mx, ptr, exists, redirect; RFC "
        "7208 4.6.4) and fail the check: drop unused includes, or replace `a`/`mx` with `ip4:`/"
        "`ip6:` ranges.",
    ),
    Kind(
        "spf.too_many_void_lookups",
        HIGH,
        "SPF has more than 2 void lookups",
        "Lookups that return no records count against a limit of 2 (RFC 7208 4.6.4): remove "
        "includes and mechanisms that point at names without records. For IPv6 senders an `a:` "
        "whose host has no AAAA record is one: use `ip4:` for IPv4-only hosts (medium when only "
        "IPv6 senders are over the limit).",
    ),
    Kind(
        "spf.include_loop",
        HIGH,
        "SPF includes or redirects loop",
        "An include or redirect leads back to a record already being evaluated (the evidence "
        "shows the path): remove the loop.",
    ),
    Kind(
        "spf.include_not_found",
        HIGH,
        "An SPF include has no SPF record",
        "An `include:` whose target publishes no SPF record is a permanent error (RFC 7208 "
        "5.2): remove it or fix the target.",
    ),
    Kind(
        "spf.redirect_not_found",
        HIGH,
        "An SPF redirect leads to a domain without an SPF record",
        "A `redirect=` to a domain that publishes no SPF record is a permanent error (RFC 7208 "
        "6.1): point it at the record that lists your senders.",
    ),
    Kind(
        "spf.too_many_mx",
        HIGH,
        "An SPF `mx` names a domain with more than 10 MX records",
        "Receivers evaluate at most 10 MX hosts per `mx` term and return a permanent error "
        "beyond (RFC 7208 4.6.4): list the senders with `ip4:`/`ip6:` or `include:` instead.",
    ),
    Kind(
        "spf.all_pass",
        CRITICAL,
        "SPF allows the whole internet (+all)",
        "`+all` lets every server send as the domain, whether it stands in the record or is "
        "reached through the `include:`/`redirect=` path in the evidence (so does a term "
        "matching every address, such as `ip4:0.0.0.0/0`). End the record with `-all` (or "
        "`~all` while you find all senders), and include only records that list their own "
        "servers.",
    ),
    Kind(
        "spf.neutral_all",
        CRITICAL,
        "SPF ends with ?all",
        "`?all` says nothing about other senders, so receivers treat it like no SPF at all (RFC "
        "7208 8.2): end with `-all` or `~all`.",
    ),
    Kind(
        "spf.no_all",
        CRITICAL,
        "SPF has neither `all` nor `redirect`",
        "Without a final `all`, unlisted senders get a neutral result: end the record with "
        "`-all` (or `~all`).",
    ),
    Kind(
        "spf.ptr_mechanism",
        LOW,
        "SPF uses the ptr mechanism (or the %{p} macro)",
        "`ptr` is slow, unreliable and discouraged (RFC 7208 5.5): list the servers with `ip4:`, "
        "`ip6:`, `a` or `include:` instead.",
    ),
    Kind(
        "spf.record_too_long",
        LOW,
        "The SPF record is very long",
        "Answers over 512 bytes may need TCP and fail with some receivers: shorten the record, "
        "e.g. by moving ranges into an included record.",
    ),
    # --- dmarc ------------------------------------------------------------------------------
    Kind(
        "dmarc.missing",
        HIGH,
        "No DMARC record",
        "Publish a policy, starting with monitoring: "
        '`_dmarc.{domain}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"` Once the reports '
        "show that all your senders pass, move to `p=quarantine`, then to `p=reject`.",
    ),
    Kind(
        "dmarc.multiple_records",
        HIGH,
        "Several DMARC records",
        "Receivers ignore DMARC when `_dmarc.{domain}` has several `v=DMARC1` records: keep one.",
    ),
    Kind(
        "dmarc.syntax_error",
        HIGH,
        "The DMARC record is invalid",
        "Receivers ignore an invalid DMARC record, as if there were none. Fix it so that it "
        "reads like this: `v=DMARC1; p=reject; rua=mailto:dmarc@{domain}`",
    ),
    Kind(
        "dmarc.policy_none",
        HIGH,
        "DMARC policy is p=none (monitoring only)",
        "`p=none` asks receivers to deliver forged mail anyway: against spoofing it is no better "
        "than no DMARC, only with reports. Once the reports show your senders pass, move to "
        "`p=quarantine`, then `p=reject`.",
    ),
    Kind(
        "dmarc.pct_partial",
        LOW,
        "DMARC applies to only part of the mail (pct below 100)",
        "Raise `pct` to 100 (or remove it) once the policy has proved itself.",
    ),
    Kind(
        "dmarc.subdomain_policy_weaker",
        LOW,
        "Subdomains get a weaker DMARC policy",
        "`sp=` or `np=` is weaker than `p=`, so spoofed subdomains get through: set them to the "
        "same policy or remove them.",
    ),
    Kind(
        "dmarc.no_rua",
        LOW,
        "DMARC asks for no aggregate reports",
        "Add `rua=mailto:dmarc@{domain}` so receivers tell you who sends in your name.",
    ),
    Kind(
        "dmarc.rua_unauthorized",
        MEDIUM,
        "An outside DMARC report address has not agreed",
        "Reports to another domain are sent only if it publishes `{domain}._report._dmarc."
        '<that domain>. TXT "v=DMARC1"` (RFC 7489 7.1): ask its owner to publish it, or use an '
        "address in your domain.",
    ),
    Kind(
        "dmarc.inherited",
        INFO,
        "DMARC policy comes from the organisational domain",
        "The domain has no record of its own, so the parent's policy applies. Publish one at "
        "`_dmarc.{domain}` if it should differ.",
    ),
    # --- dkim -------------------------------------------------------------------------------
    Kind(
        "dkim.no_selector_found",
        MEDIUM,
        "No DKIM key found",
        "Sign outgoing mail with DKIM and publish the key, for example: "
        '`sel1._domainkey.{domain}. TXT "v=DKIM1; k=rsa; p=<base64 public key>"` If you sign '
        "with a selector mailsec does not know, add it to this domain's DKIM selectors.",
    ),
    Kind(
        "dkim.weak_key",
        MEDIUM,
        "A DKIM key is shorter than 2048 bits",
        "Generate a 2048-bit RSA key (or Ed25519 alongside), publish it under a new selector, "
        "switch signing to it, then revoke the old key.",
    ),
    Kind(
        "dkim.testing_mode",
        LOW,
        "A DKIM key is in testing mode (t=y)",
        "Receivers may treat signatures as unsigned: remove `t=y` once signing works.",
    ),
    Kind(
        "dkim.revoked_key",
        INFO,
        "A DKIM selector is revoked (empty p=)",
        "Nothing to do if the key was retired on purpose; otherwise publish the key again.",
    ),
    Kind(
        "dkim.sha1_only",
        MEDIUM,
        "A DKIM key allows only SHA-1, which verifiers refuse",
        "Verifiers must not accept rsa-sha1 signatures (RFC 8301 3.1), so every signature made "
        "with this key fails: sign with rsa-sha256 and remove `h=sha1` from the key record (or "
        "list `h=sha256`).",
    ),
    Kind(
        "dkim.invalid_key",
        MEDIUM,
        "A DKIM key record cannot be used",
        "Publish the key again as `v=DKIM1; k=rsa; p=<base64 public key>`; a broken record fails "
        "every signature made with that selector.",
    ),
    # --- mta_sts ----------------------------------------------------------------------------
    Kind(
        "mta_sts.missing",
        LOW,
        "No MTA-STS policy",
        'Publish `_mta-sts.{domain}. TXT "v=STSv1; id=20240101"` and serve '
        "https://mta-sts.{domain}/.well-known/mta-sts.txt (version: STSv1, mode: testing, one "
        "mx line per MX host, max_age: 604800) so that senders insist on TLS.",
    ),
    Kind(
        "mta_sts.record_invalid",
        MEDIUM,
        "The MTA-STS record is invalid",
        "The record must read like `v=STSv1; id=20240101` (RFC 8461 3.1).",
    ),
    Kind(
        "mta_sts.policy_unreachable",
        HIGH,
        "The MTA-STS policy cannot be fetched",
        "Senders that cached your policy keep using it, others get none: serve "
        "https://mta-sts.{domain}/.well-known/mta-sts.txt with a valid certificate.",
    ),
    Kind(
        "mta_sts.policy_invalid",
        MEDIUM,
        "The MTA-STS policy is invalid",
        "The policy needs `version: STSv1`, `mode`, `max_age` and an `mx` line per server "
        "(RFC 8461 3.2).",
    ),
    Kind(
        "mta_sts.mode_testing",
        LOW,
        "MTA-STS is in testing mode",
        "In testing mode senders deliver even when TLS fails: switch to `mode: enforce` once the "
        "TLS reports are clean.",
    ),
    Kind(
        "mta_sts.mode_none",
        LOW,
        "MTA-STS mode is none",
        "`mode: none` withdraws the policy: use `mode: enforce` (or `testing`).",
    ),
    Kind(
        "mta_sts.max_age_short",
        LOW,
        "The MTA-STS max_age is short",
        "A short max_age leaves senders without the policy between fetches: use at least "
        "604800 (one week); RFC 8461 3.2 advises weeks or more.",
    ),
    Kind(
        "mta_sts.mx_mismatch",
        HIGH,
        "An MX host is not covered by the MTA-STS policy",
        "Senders that enforce the policy refuse to deliver to an MX it does not list: add an "
        "`mx:` line for every MX host (wildcards like `*.{domain}` allowed).",
    ),
    Kind(
        "mta_sts.mx_cert_invalid",
        HIGH,
        "An MX host's certificate fails the MTA-STS policy",
        "Under an MTA-STS policy senders require a certificate that chains to a public CA, has "
        "not expired and names the MX host (RFC 8461 4.2); in enforce mode they refuse to deliver "
        "otherwise. Install such a certificate on every MX (e.g. from Let's Encrypt), or set "
        "`mode: testing` until it is.",
    ),
    # --- tls_rpt ----------------------------------------------------------------------------
    Kind(
        "tls_rpt.missing",
        LOW,
        "No SMTP TLS reporting (TLS-RPT) record",
        'Publish `_smtp._tls.{domain}. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"` to learn '
        "when senders cannot reach you over TLS.",
    ),
    Kind(
        "tls_rpt.invalid",
        MEDIUM,
        "The TLS-RPT record is invalid",
        "The record must read like `v=TLSRPTv1; rua=mailto:tlsrpt@{domain}` (RFC 8460 3).",
    ),
    # --- bimi -------------------------------------------------------------------------------
    Kind(
        "bimi.missing",
        INFO,
        "No BIMI record",
        'Optional: publish `default._bimi.{domain}. TXT "v=BIMI1; l=https://{domain}/logo.svg"` '
        "to show your logo in supporting mail clients (it needs DMARC enforcement).",
    ),
    Kind(
        "bimi.invalid",
        LOW,
        "The BIMI record is invalid",
        "The record must read like `v=BIMI1; l=https://{domain}/logo.svg`.",
    ),
    Kind(
        "bimi.dmarc_not_enforced",
        LOW,
        "BIMI without an enforcing DMARC policy",
        "Mail clients show the logo only for mail protected by DMARC `p=quarantine` or "
        "`p=reject` applied to all mail (no `pct` below 100): enforce DMARC at "
        "`_dmarc.{domain}`, or remove the BIMI record.",
    ),
    # --- dnssec -----------------------------------------------------------------------------
    Kind(
        "dnssec.unsigned",
        MEDIUM,
        "The domain is not signed with DNSSEC",
        "Enable DNSSEC at your DNS host and publish the DS record at your registrar: it protects "
        "MX and policy records from forgery and makes DANE possible.",
    ),
    Kind(
        "dnssec.bogus",
        CRITICAL,
        "DNSSEC validation fails",
        "Validating resolvers cannot resolve this zone at all, so mail to it fails. Fix the "
        "chain: the DS at the parent must match a key that signs the zone, with valid "
        "signatures.",
    ),
    Kind(
        "dnssec.mx_unsigned",
        LOW,
        "An MX host's zone is not signed",
        "Without DNSSEC on the mail servers' zone, DANE cannot protect deliveries to them: sign "
        "it; if a mail provider runs them, only the provider can (it weighs nothing then).",
    ),
    Kind(
        "dnssec.mx_bogus",
        HIGH,
        "DNSSEC validation fails for an MX host's zone",
        "Validating senders cannot find the mail server: fix the DNSSEC chain of that zone.",
    ),
    # --- dane -------------------------------------------------------------------------------
    Kind(
        "dane.missing",
        LOW,
        "No DANE TLSA record for an MX host",
        "Publish `_25._tcp.<mx host>. TLSA 3 1 1 <sha256 of the server's public key>` in the "
        "signed zone of the MX host; if a mail provider runs it, only the provider can (it "
        "weighs nothing then).",
    ),
    Kind(
        "dane.without_dnssec",
        MEDIUM,
        "TLSA records without DNSSEC",
        "TLSA records count only in a DNSSEC-signed zone: sign the zone, or remove them.",
    ),
    Kind(
        "dane.bad_parameters",
        MEDIUM,
        "A TLSA record has unsuitable parameters",
        "For SMTP use `3 1 1` (DANE-EE, public key, SHA-256) or `2 1 1` (DANE-TA); usages 0/1 "
        "and full-data matching (0) are not meant for SMTP (RFC 7672 3.1).",
    ),
    Kind(
        "dane.mismatch",
        CRITICAL,
        "The TLSA records do not match the certificate served",
        "DANE senders refuse to deliver to a server whose certificate chain matches none of its "
        "TLSA records (RFC 7672 2.2). Publish a TLSA record for the certificate really served "
        "(`3 1 1` with the SHA-256 of its public key), or serve the certificate the records "
        "name; when renewing, publish the new key's record before switching.",
    ),
    *PROBE_KINDS,
    # --- dns --------------------------------------------------------------------------------
    Kind(
        "dns.lookup_failed",
        HIGH,
        "A DNS lookup failed",
        "Could not test. If this persists, check that every name server of the zone answers "
        "(no timeouts, SERVFAIL or REFUSED); validating resolvers see the same failure.",
    ),
    Kind(
        "dns.partial_lookup_failed",
        INFO,
        "A DNS lookup failed: some verdicts were not tested",
        "The categories keep the verdicts their answered lookups support; the ones named were "
        "not tested. If this persists, check that every name server of the zone answers (no "
        "timeouts, SERVFAIL or REFUSED).",
    ),
    Kind(
        "dns.resolver_broken",
        HIGH,
        "The resolver cannot be trusted: nothing was tested",
        "Not the domain's fault. Point mailsec at a resolver that answers truthfully and hands "
        "over DNSSEC signatures (`MAILSEC_DNS_NAMESERVERS`, or `--nameserver` for "
        "`check_domain`): a captive portal, a filtering resolver or a middlebox that strips "
        "signatures makes every domain look broken.",
    ),
]

CATALOGUE: dict[str, Kind] = {kind.id: kind for kind in KINDS}


def finding(
    kind_id: str,
    detail: str,
    *,
    domain: str = "",
    severity: Severity | None = None,
    category: str = "",
) -> Finding:
    """A finding of the catalogue's kind, with its evidence. `category` overrides the id's
    prefix (dns.lookup_failed belongs to the category that could not be tested)."""
    kind = CATALOGUE[kind_id]
    return Finding(
        id=kind.id,
        category=category or kind.category,
        severity=severity or kind.severity,
        title=kind.title,
        detail=sentence(detail),
        remediation=kind.remediation.replace("{domain}", domain or "example.com"),
    )


def sentence(text: str) -> str:
    """Evidence ending as a sentence: a full stop added unless one (or ? !) ends it already, so
    that a note appended after it (scoring.py) starts a sentence of its own."""
    text = text.strip().rstrip(",;:").rstrip()
    return text if not text or text.endswith((".", "?", "!", ".)")) else text + "."
