"""DKIM: probe likely selectors for published keys and judge each key (parsed by dkimpy)."""

import base64
import binascii

import dkim
from django.utils.translation import gettext_noop
from dkim.util import InvalidTagValueList, parse_tag_value

from domains.checks.base import CategoryResult, Check, Context, Severity, register
from domains.findings import finding
from domains.messages import msg

# Selectors that mail providers and sending services publish (Google Workspace, Microsoft 365,
# Mailchimp/Mandrill, SendGrid, Mailgun, Mailjet, Postmark, Zendesk, iCloud, Fastmail, Proton,
# Zoho, HubSpot, Constant Contact, Klaviyo, Everlytic ...) and the usual generic names.
COMMON_SELECTORS = [
    "google", "selector1", "selector2", "default", "dkim", "mail", "email", "smtp", "mx",
    "k1", "k2", "k3", "s1", "s2", "s1024", "s2048", "key1", "key2", "dkim1", "dkim2",
    "sel1", "sel2", "dk", "mandrill", "mailjet", "smtpapi", "pm", "mte1", "cm", "krs", "mailo",
    "zendesk1", "zendesk2", "sig1", "fm1", "fm2", "fm3", "protonmail", "protonmail2",
    "protonmail3", "zmail", "hs1", "hs2", "ctct1", "ctct2", "kl", "kl2", "everlytickey1",
    "everlytickey2", "turbo-smtp", "mxvault", "20161025", "20210112", "20230601", "a1", "m1",
    "mta", "scph0316",
]  # fmt: skip
MIN_RSA_BITS = 2048


def selectors_for(ctx: Context) -> list[str]:
    return list(dict.fromkeys([*ctx.dkim_selectors, *COMMON_SELECTORS]))


def parse_key(record: str) -> dict:
    """The facts of one key record; raises ValueError for a record that cannot be used."""
    try:
        tags = parse_tag_value(record.encode("utf-8"))
    except InvalidTagValueList as exc:
        raise ValueError(f"not a tag=value list: {exc}") from None
    tags = {k.decode().lower(): v.decode("utf-8", "replace").strip() for k, v in tags.items()}
    key = {
        "type": tags.get("k", "rsa").lower(),
        "testing": "y" in tags.get("t", "").split(":"),
        # RFC 6376 3.6.1: the hash algorithms the key may be used with; all when absent.
        "hashes": [h.strip().lower() for h in tags["h"].split(":")] if "h" in tags else None,
    }
    if tags.get("v", "DKIM1") != "DKIM1":
        raise ValueError(f"v={tags['v']} is not DKIM1")
    if "p" not in tags:
        raise ValueError("no p= tag")
    if tags["p"] == "":
        return {**key, "revoked": True, "bits": None}
    if key["type"] == "ed25519":
        try:
            raw = base64.b64decode(tags["p"], validate=True)
        except binascii.Error:
            raise ValueError("p= is not base64") from None
        if len(raw) != 32:
            raise ValueError(f"an Ed25519 key has 32 bytes, this one {len(raw)}")
        return {**key, "revoked": False, "bits": 256}
    if key["type"] != "rsa":
        raise ValueError(f"unknown key type k={key['type']}")
    try:
        _, bits, _, _ = dkim.evaluate_pk(b"", record.encode("utf-8"))
    except dkim.KeyFormatError as exc:
        raise ValueError(str(exc)) from None
    return {**key, "revoked": False, "bits": bits}


def looks_like_dkim(record: str) -> bool:
    """A wildcard TXT (say an SPF record at *.domain) answers every selector: not a key."""
    compact = record.replace(" ", "").lower()
    return compact.startswith("v=dkim1") or ";p=" in f";{compact}" or compact.startswith("k=")


@register
class DkimCheck(Check):
    name = "dkim"
    requires = ("mx", "spf", "dmarc")

    def prefetch(self, ctx: Context):
        return [(f"_domainkey.{ctx.domain}", "TXT")] + [
            (f"{s}._domainkey.{ctx.domain}", "TXT") for s in ctx.dkim_selectors
        ]

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        selectors = self._selectors_to_probe(ctx)
        names = {s: f"{s}._domainkey.{ctx.domain}" for s in selectors}
        ctx.dns.prefetch(*[(name, "TXT") for name in names.values()])
        keys, answered = {}, set()
        for selector, name in names.items():
            # One selector failing voids only that selector: the keys found stay judged.
            with ctx.dns.optional(f"DKIM selector {selector} not probed"):
                records = [t for t in ctx.dns.lookup(name, "TXT").texts if looks_like_dkim(t)]
                answered.add(selector)
                if records:
                    keys[selector] = records
                    self._judge(ctx, name, records, result)
        unanswered = [name for selector, name in names.items() if selector not in answered]
        if unanswered and not keys:
            ctx.dns.lookup(unanswered[0], "TXT")  # "no key" would be a guess: could not test
        result.records = {"DKIM": keys}
        result.data = {"selectors": sorted(keys)}
        if ctx.sends_no_mail:
            result.applicable = False
            return result
        if not keys:
            detail = msg(
                gettext_noop(
                    "No key at <selector>._domainkey.%(domain)s for the %(count)s selectors probed."
                ),
                domain=ctx.domain,
                count=len(selectors),
            )
            if len(selectors) < len(selectors_for(ctx)):
                detail = msg(
                    gettext_noop(
                        "_domainkey.%(domain)s does not exist, so no key can exist below it (RFC "
                        "8020)."
                    ),
                    domain=ctx.domain,
                )
            result.findings.append(finding("dkim.no_selector_found", detail, domain=ctx.domain))
        return result

    @staticmethod
    def _selectors_to_probe(ctx: Context) -> list[str]:
        """All likely selectors, unless `_domainkey.<domain>` does not exist: then nothing does
        below it (RFC 8020), and only the selectors the user named are asked."""
        with ctx.dns.optional(f"_domainkey.{ctx.domain} unknown, so every selector probed"):
            if ctx.dns.lookup(f"_domainkey.{ctx.domain}", "TXT").status == "nxdomain":
                return list(dict.fromkeys(ctx.dkim_selectors))
        return selectors_for(ctx)

    @staticmethod
    def _judge(ctx: Context, name: str, records: list[str], result: CategoryResult) -> None:
        for record in records:
            evidence = f"{name}: {record[:120]}{'...' if len(record) > 120 else ''}"
            try:
                key = parse_key(record)
            except ValueError as exc:
                result.findings.append(
                    finding("dkim.invalid_key", f"{evidence} ({exc})", domain=ctx.domain)
                )
                continue
            if key["revoked"]:
                result.findings.append(finding("dkim.revoked_key", evidence, domain=ctx.domain))
                continue
            if key["type"] == "rsa" and key["bits"] < MIN_RSA_BITS:
                severity = Severity.HIGH if key["bits"] < 1024 else Severity.MEDIUM
                detail = msg(
                    gettext_noop("%(name)s: RSA %(bits)s bits."), name=name, bits=key["bits"]
                )
                result.findings.append(
                    finding("dkim.weak_key", detail, domain=ctx.domain, severity=severity)
                )
            if key["hashes"] is not None and "sha256" not in key["hashes"]:
                # RFC 8301 3.1: verifiers must not accept rsa-sha1 signatures, and sha256 is the
                # only other hash DKIM defines (also for Ed25519, RFC 8463).
                detail = msg(
                    gettext_noop("%(evidence)s (h=%(hashes)s: no sha256)"),
                    evidence=evidence,
                    hashes=":".join(key["hashes"]),
                )
                result.findings.append(finding("dkim.sha1_only", detail, domain=ctx.domain))
            if key["testing"]:
                result.findings.append(finding("dkim.testing_mode", evidence, domain=ctx.domain))
