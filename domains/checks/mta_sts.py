"""MTA-STS (RFC 8461): the `_mta-sts` record, the policy served over HTTPS, and whether the
policy covers every MX host.

The record and the policy are parsed by checkdmarc's pure parsers; the policy is fetched by
`domains.net` (through the run's DNS session), never by checkdmarc, which would use the system
resolver.
"""

import re

import checkdmarc.mta_sts as cd_mta_sts
from django.utils.translation import gettext_noop

from domains import net
from domains.checks.base import CategoryResult, Check, Context, Severity, register
from domains.findings import finding
from domains.messages import Message, msg

POLICY_PATH = "/.well-known/mta-sts.txt"
POLICY_PORT = 443  # RFC 8461 3.3; a module constant only so tests can serve elsewhere
# RFC 8461 3.3 suggests one minute and 64 KiB; a check should not wait that long.
FETCH_TIMEOUT = 10.0
MAX_POLICY_BYTES = 64 * 1024
# A week: the least the finding's fix asks for (RFC 8461 3.2 advises "weeks or greater").
SHORT_MAX_AGE = 604800
# RFC 8461 3.1: senders discard TXT records that do not begin with "v=STSv1;" (WSP allowed
# before the ";", as checkdmarc also accepts).
STS_RECORD = re.compile(r"v=STSv1[ \t]*;")


def sts_records(texts: list[str]) -> list[str]:
    return [t for t in texts if STS_RECORD.match(t)]


def uncovered_hosts(hosts: list[str], patterns: list[str]) -> list[str]:
    """The MX hosts no `mx:` pattern of the policy matches (RFC 8461 4.1)."""
    return [h for h in hosts if not cd_mta_sts.mx_in_mta_sts_patterns(h.rstrip("."), patterns)]


# How long max_age is, in words: one template for one unit, another for more (whole sentences
# for the translators; a count is a number in the reader's locale).
DURATIONS = [
    (86400, gettext_noop("%(count)s day"), gettext_noop("%(count)s days")),
    (3600, gettext_noop("%(count)s hour"), gettext_noop("%(count)s hours")),
    (60, gettext_noop("%(count)s minute"), gettext_noop("%(count)s minutes")),
]


def duration(seconds: int) -> Message:
    for size, one, many in DURATIONS:
        if seconds >= size:
            count = round(seconds / size, 1)
            count = int(count) if count.is_integer() else count  # 1 day, 1.5 days
            return msg(one if count == 1 else many, count=count)
    one, many = gettext_noop("%(count)s second"), gettext_noop("%(count)s seconds")
    return msg(one if seconds == 1 else many, count=seconds)


@register
class MtaStsCheck(Check):
    name = "mta_sts"
    requires = ("mx",)

    def prefetch(self, ctx: Context):
        host = f"mta-sts.{ctx.domain}"
        return [(f"_mta-sts.{ctx.domain}", "TXT"), (host, "A"), (host, "AAAA")]

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        if ctx.null_mx:
            result.applicable = False
            return result
        name = f"_mta-sts.{ctx.domain}"
        texts = ctx.dns.lookup(name, "TXT").texts
        result.records = {"TXT": texts}
        record_id = self._record_id(ctx, name, sts_records(texts), result)
        if record_id is None:
            return result
        result.data = {"id": record_id}
        policy_text = self._fetch_policy(ctx, result)
        if policy_text is None:
            return result
        result.records["policy"] = policy_text
        try:
            policy = cd_mta_sts.parse_mta_sts_policy(policy_text)["policy"]
        except cd_mta_sts.MTASTSPolicyError as exc:
            detail = f"https://mta-sts.{ctx.domain}{POLICY_PATH}: {exc}"
            result.findings.append(self._finding(ctx, "mta_sts.policy_invalid", detail))
            return result
        result.data.update(mode=policy["mode"], mx=policy["mx"], max_age=policy["max_age"])
        self._judge_policy(ctx, policy, result)
        return result

    def _record_id(self, ctx: Context, name: str, records: list[str], result) -> str | None:
        """The id of the one valid v=STSv1 record, or None with a finding saying why not."""
        if not records:
            result.findings.append(
                self._finding(
                    ctx,
                    "mta_sts.missing",
                    msg(gettext_noop("No v=STSv1 TXT record at %(name)s."), name=name),
                )
            )
            return None
        if len(records) > 1:
            detail = msg(
                gettext_noop(
                    "%(count)s v=STSv1 records at %(name)s (%(records)s): senders then assume "
                    "there is no policy (RFC 8461 3.1)."
                ),
                count=len(records),
                name=name,
                records=" | ".join(records),
            )
            result.findings.append(self._finding(ctx, "mta_sts.record_invalid", detail))
            return None
        try:
            return cd_mta_sts.parse_mta_sts_record(records[0])["tags"]["id"]
        except cd_mta_sts.MTASTSError as exc:
            detail = f"{name}: {records[0]} ({exc})"
            result.findings.append(self._finding(ctx, "mta_sts.record_invalid", detail))
            return None

    def _fetch_policy(self, ctx: Context, result: CategoryResult) -> str | None:
        """The policy text, or None with a finding; a failed DNS lookup propagates."""
        host = f"mta-sts.{ctx.domain}"
        try:
            response = net.fetch_https(
                ctx.dns,
                host,
                POLICY_PATH,
                max_bytes=MAX_POLICY_BYTES,
                timeout=FETCH_TIMEOUT,
                port=POLICY_PORT,
            )
            response.raise_for_status(200)
        except net.NetError as exc:
            url = f"https://{host}{POLICY_PATH}"
            reason = str(exc).rstrip(".")
            detail = f"{reason}." if url in reason else f"{url}: {reason}."
            result.findings.append(self._finding(ctx, "mta_sts.policy_unreachable", detail))
            return None
        try:
            text = response.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            detail = msg(
                gettext_noop("%(url)s is not UTF-8 text: %(error)s."), url=response.url, error=exc
            )
            result.findings.append(self._finding(ctx, "mta_sts.policy_invalid", detail))
            return None
        if response.content_type != "text/plain":
            if response.content_type:
                text_ = gettext_noop(
                    "%(url)s is served as %(served)s, not text/plain: senders that check the "
                    "media type (RFC 8461 3.3) ignore the policy."
                )
            else:
                text_ = gettext_noop(
                    "%(url)s is served as no Content-Type, not text/plain: senders that check "
                    "the media type (RFC 8461 3.3) ignore the policy."
                )
            detail = msg(text_, url=response.url, served=response.content_type)
            result.findings.append(
                self._finding(ctx, "mta_sts.policy_invalid", detail, severity=Severity.LOW)
            )
        return text

    def _judge_policy(self, ctx: Context, policy: dict, result: CategoryResult) -> None:
        mode, max_age = policy["mode"], policy["max_age"]
        if mode == "testing":
            detail = msg(
                gettext_noop("mode: testing; senders report TLS failures but still deliver.")
            )
            result.findings.append(self._finding(ctx, "mta_sts.mode_testing", detail))
        elif mode == "none":
            detail = msg(gettext_noop("mode: none; senders drop any policy they cached."))
            result.findings.append(self._finding(ctx, "mta_sts.mode_none", detail))
        if max_age < SHORT_MAX_AGE:
            detail = msg(
                gettext_noop("max_age: %(max_age)s (%(duration)s), less than a week (604800)."),
                max_age=max_age,
                duration=duration(max_age),
            )
            result.findings.append(self._finding(ctx, "mta_sts.max_age_short", detail))
        if mode in ("enforce", "testing"):
            missing = uncovered_hosts(ctx.mx_hosts, policy["mx"])
            if missing:
                detail = msg(
                    gettext_noop("MX %(hosts)s not matched by the policy's mx: %(listed)s."),
                    hosts=missing,
                    listed=policy["mx"],
                )
                severity = Severity.MEDIUM if mode == "testing" else None
                result.findings.append(
                    self._finding(ctx, "mta_sts.mx_mismatch", detail, severity=severity)
                )

    def finish(self, ctx: Context, result: CategoryResult) -> bool:
        """mta_sts.mx_cert_invalid: under a policy in enforce or testing mode every MX must
        present a certificate that is trusted, unexpired and valid for its name (RFC 8461 4.2),
        as the smtp probes found."""
        mode = result.data.get("mode")
        if mode not in ("enforce", "testing"):
            return False
        lines = []
        for row in ctx.data("smtp").get("servers", []):
            cert = row.get("certificate")
            if not cert or (cert["trusted"] and cert["name_matches"]):
                continue
            problems = [p for p, bad in (
                ("not trusted (or expired)", not cert["trusted"]),
                (f"names {', '.join(cert['names']) or 'no DNS name'}", not cert["name_matches"]),
            ) if bad]  # fmt: skip
            lines.append(f"{row['host']} ({row['address']}): {'; '.join(problems)}")
        if not lines:
            return False
        detail = f"mode: {mode}; " + "; ".join(sorted(set(lines))) + "."
        severity = Severity.MEDIUM if mode == "testing" else None
        result.findings.append(
            self._finding(ctx, "mta_sts.mx_cert_invalid", detail, severity=severity)
        )
        return True

    @staticmethod
    def _finding(ctx: Context, kind_id: str, detail, *, severity: Severity | None = None):
        return finding(kind_id, detail, domain=ctx.domain, severity=severity)
