"""SMTP TLS reports (RFC 8460): one JSON document in, a TlsReport out, or Refused saying why.

The document is read whole with the stdlib json module: unpack.py caps the decompressed size,
so there is no streaming to do. Reporters' known quirks are accepted (a one-element array around
the report, `contact-info: null`, a `policy-string` sent as one JSON-encoded string, `mx: `
prefixes on mx-host values, `mx-host` as a bare string); anything that would store wrong numbers
is refused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re

from domains.names import DomainNameError, normalize_domain
from reports.parsing.types import Payload, Refused, TlsPolicy, TlsReport

# Bounds that keep one report within what storage holds (model field lengths, BigIntegerField)
# and within what a human could still read on a page.
MAX_SHORT_TEXT = 255
MAX_LONG_TEXT = 2000
MAX_POLICY_TYPE = 40
MAX_POLICIES = 1000
MAX_DETAILS = 5000
MAX_STRINGS = 200
MAX_COUNT = 10**12  # sessions per policy and day; anything bigger is a broken counter
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(days=2)

NOT_TLS = "JSON but not an SMTP TLS report (RFC 8460)"
REPORT_KEYS = ("organization-name", "report-id", "date-range", "policies")
DETAIL_TEXT = (
    "result-type",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "additional-information",
    "failure-reason-code",
)
DETAIL_IPS = ("sending-mta-ip", "receiving-ip")
RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)
MX_PREFIX = re.compile(r"^mx\s*:\s*", re.IGNORECASE)


def parse(payload: Payload) -> TlsReport:
    """Parse one RFC 8460 JSON payload; raise Refused with a reason a person can act on."""
    with payload.open() as stream:
        data = stream.read()
    document = _report_object(_load(data))
    begin, end = _date_range(document.get("date-range"))
    policies = document.get("policies")
    if not isinstance(policies, list) or not policies:
        raise Refused("the report has no policies")
    if len(policies) > MAX_POLICIES:
        raise Refused(f"the report has {len(policies)} policies; at most {MAX_POLICIES} are read")
    return TlsReport(
        org_name=_required_text(document, "organization-name"),
        contact_info=_text(document.get("contact-info"), "contact-info", MAX_SHORT_TEXT),
        report_id=_report_id(document.get("report-id")),
        begin=begin,
        end=end,
        policies=[_policy(entry, number) for number, entry in enumerate(policies, start=1)],
    )


def _load(data: bytes) -> object:
    # json.loads on bytes detects UTF-8/16/32 and skips a UTF-8 byte order mark.
    try:
        return json.loads(data)
    except RecursionError:
        raise Refused("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise Refused(f"not valid JSON: {_short(str(exc))}") from None


def _report_object(document: object) -> dict:
    if isinstance(document, list):
        if len(document) != 1:
            raise Refused(
                f"a JSON array of {len(document)} items: only an array holding exactly one "
                "SMTP TLS report is accepted"
            )
        document = document[0]
    if not isinstance(document, dict) or not any(key in document for key in REPORT_KEYS):
        raise Refused(NOT_TLS)
    return document


def _report_id(value: object) -> str:
    text = _text(value, "report-id", MAX_LONG_TEXT)
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise Refused("the report has no report-id")
    if len(text) > MAX_SHORT_TEXT:
        raise Refused(f"report-id is longer than {MAX_SHORT_TEXT} characters")
    return text


def _required_text(document: dict, key: str) -> str:
    text = _text(document.get(key), key, MAX_SHORT_TEXT)
    if not text:
        raise Refused(f"the report has no {key}")
    return text


def _text(value: object, where: str, limit: int) -> str:
    """A text field: None is empty, numbers become text, lists and objects are refused."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Refused(f"{where} should be text, not {_json_type(value)}")
    # NUL and lone surrogates (both legal in JSON strings) cannot be stored in PostgreSQL.
    text = str(value).replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text.strip()[:limit]


def _date_range(value: object) -> tuple[dt.datetime, dt.datetime]:
    if not isinstance(value, dict):
        raise Refused("the report has no date-range")
    begin = _datetime(value.get("start-datetime"), "start-datetime")
    end = _datetime(value.get("end-datetime"), "end-datetime")
    latest = dt.datetime.now(dt.UTC) + CLOCK_SKEW
    for where, moment in (("start-datetime", begin), ("end-datetime", end)):
        if not EARLIEST <= moment <= latest:
            raise Refused(f"date-range {where} {moment.isoformat()} is not a plausible date")
    if end < begin:
        raise Refused("date-range end-datetime is before start-datetime")
    return begin, end


def _datetime(value: object, where: str) -> dt.datetime:
    if value is None or value == "":
        raise Refused(f"date-range has no {where}")
    match = RFC3339.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise Refused(f"date-range {where} {_short(str(value))!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
    offset = dt.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    try:
        # No offset at all is not RFC 3339; reporters who omit it mean UTC.
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second), 59),  # a leap second (:60) is not representable
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=dt.timezone(-offset if sign == "-" else offset),
        ).astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise Refused(f"date-range {where} {_short(value)!r} is not a valid date: {exc}") from None


def _policy(entry: object, number: int) -> TlsPolicy:
    where = f"policy {number}"
    if not isinstance(entry, dict) or not isinstance(entry.get("policy"), dict):
        raise Refused(f"{where} has no policy object")
    policy = entry["policy"]
    summary = entry.get("summary")
    if not isinstance(summary, dict):
        raise Refused(f"{where} has no summary")
    details = entry.get("failure-details")
    if details is None:
        details = []
    if not isinstance(details, list):
        raise Refused(f"{where} failure-details should be a list, not {_json_type(details)}")
    if len(details) > MAX_DETAILS:
        raise Refused(f"{where} has {len(details)} failure details; at most {MAX_DETAILS}")
    return TlsPolicy(
        policy_type=_policy_type(policy.get("policy-type"), where),
        policy_domain=_policy_domain(policy.get("policy-domain"), where),
        policy_strings=_policy_strings(policy.get("policy-string"), where),
        mx_hosts=[
            MX_PREFIX.sub("", host)
            for host in _string_list(policy.get("mx-host"), f"{where} mx-host")
        ],
        successful=_count(summary, "total-successful-session-count", where),
        failed=_count(summary, "total-failure-session-count", where),
        failure_details=[
            _failure_detail(detail, f"{where} failure detail {index}")
            for index, detail in enumerate(details, start=1)
        ],
    )


def _policy_type(value: object, where: str) -> str:
    # Unknown types (not tlsa, sts or no-policy-found) are kept as the reporter wrote them.
    text = _text(value, f"{where} policy-type", MAX_POLICY_TYPE).lower()
    if not text:
        raise Refused(f"{where} has no policy-type")
    return text


def _policy_domain(value: object, where: str) -> str:
    text = _text(value, f"{where} policy-domain", MAX_LONG_TEXT)
    if not text:
        raise Refused(f"{where} has no policy-domain")
    try:
        return normalize_domain(text)
    except DomainNameError as exc:
        raise Refused(
            f"{where} policy-domain {_short(text)!r} is not a domain name: {exc.messages[0]}"
        ) from None


def _policy_strings(value: object, where: str) -> list[str]:
    # Microsoft sends TLSA records as one element holding a JSON-encoded array of strings.
    strings = []
    for item in _string_list(value, f"{where} policy-string"):
        if item.startswith("["):
            try:
                decoded = json.loads(item)
            except (ValueError, RecursionError):
                decoded = None
            if isinstance(decoded, list) and all(isinstance(x, str) for x in decoded):
                strings.extend(_text(x, f"{where} policy-string", MAX_LONG_TEXT) for x in decoded)
                continue
        strings.append(item)
    return strings[:MAX_STRINGS]


def _string_list(value: object, where: str) -> list[str]:
    """A list of strings; a bare string counts as a one-element list."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_STRINGS:
        raise Refused(f"{where} has {len(items)} entries; at most {MAX_STRINGS}")
    texts = [_text(item, where, MAX_LONG_TEXT) for item in items]
    return [text for text in texts if text]


def _count(container: dict, key: str, where: str) -> int:
    # A count the reporter left out is zero sessions of that kind (seen for failures).
    value = container.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(f"{where} {key} should be a whole number, not {_json_type(value)}")
    if value < 0:
        raise Refused(f"{where} {key} is negative ({value})")
    if value > MAX_COUNT:
        raise Refused(f"{where} {key} is implausibly large ({value})")
    return value


def _failure_detail(detail: object, where: str) -> dict:
    if not isinstance(detail, dict):
        raise Refused(f"{where} should be an object, not {_json_type(detail)}")
    result = {key: _text(detail.get(key), f"{where} {key}", MAX_LONG_TEXT) for key in DETAIL_TEXT}
    if not result["result-type"]:
        raise Refused(f"{where} has no result-type")
    for key in DETAIL_IPS:
        result[key] = _ip(detail.get(key), f"{where} {key}")
    result["failed-session-count"] = _count(detail, "failed-session-count", where)
    return result


def _ip(value: object, where: str) -> str:
    text = _text(value, where, MAX_SHORT_TEXT)
    if not text:
        return ""
    try:
        if "%" in text:  # a scoped address names an interface of the reporter, not a host
            raise ValueError(text)
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise Refused(f"{where} {_short(text)!r} is not an IP address") from None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    names = {
        dict: "an object",
        list: "a list",
        str: "text",
        int: "a number",
        float: "a decimal number",
    }
    return names.get(type(value), type(value).__name__)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
