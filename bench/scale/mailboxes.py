"""Report mailboxes for the harness: a real dovecot (tests/dovecot.py) with `count` accounts,
each holding `reports` distinct aggregate reports (gzip-attached, as the big reporters send
them) about the harness's domains."""

import gzip
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

from tests.dovecot import DovecotServer


def report_xml(domain: str, report_id: str, records: int, n: int) -> bytes:
    begin = 1_700_000_000 + n * 86400
    rows = "".join(
        f"<record><row><source_ip>192.0.2.{(n + i) % 250 + 1}</source_ip><count>{i + 1}</count>"
        "<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>"
        f"</policy_evaluated></row><identifiers><header_from>{domain}</header_from>"
        f"</identifiers><auth_results><dkim><domain>{domain}</domain><selector>google"
        f"</selector><result>pass</result></dkim><spf><domain>{domain}</domain>"
        "<scope>mfrom</scope><result>pass</result></spf></auth_results></record>"
        for i in range(records)
    )
    return (
        '<?xml version="1.0"?><feedback><report_metadata><org_name>reporter.example</org_name>'
        f"<email>dmarc@reporter.example</email><report_id>{report_id}</report_id><date_range>"
        f"<begin>{begin}</begin><end>{begin + 86399}</end></date_range></report_metadata>"
        f"<policy_published><domain>{domain}</domain><p>quarantine</p></policy_published>"
        f"{rows}</feedback>"
    ).encode()


def report_mail(domain: str, report_id: str, records: int, n: int) -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc@reporter.example"
    message["To"] = f"dmarc@{domain}"
    message["Subject"] = f"Report domain: {domain} Submitter: reporter.example {report_id}"
    message["Message-ID"] = f"<{report_id}@reporter.example>"
    message.set_content("This is an aggregate report from reporter.example.")
    message.add_attachment(
        gzip.compress(report_xml(domain, report_id, records, n)),
        maintype="application",
        subtype="gzip",
        filename=f"reporter.example!{domain}!{report_id}.xml.gz",
    )
    return message.as_bytes()


def fill(workdir: Path, count: int, reports: int, records: int, domains: list[str]):
    """A started dovecot with `count` full mailboxes; their specs for the seed."""
    server = DovecotServer(workdir)
    server.start()
    boxes = []
    for i in range(count):
        user, password = f"reports{i}@scale.test", uuid.uuid4().hex
        server.add_user(user, password)
        boxes.append({"user": user, "password": password, "host": server.host})
        boxes[-1]["port"] = server.imaps_port

    def append(box: dict, i: int) -> None:
        imap = server.client(box["user"])
        try:
            for n in range(reports):
                domain = domains[(i * reports + n) % len(domains)]
                report_id = f"scale-{i}-{n}-{uuid.uuid4().hex[:6]}"
                imap.append("INBOX", None, None, report_mail(domain, report_id, records, n))
        finally:
            imap.logout()

    with ThreadPoolExecutor(8) as pool:  # dovecot's login processes are few
        list(pool.map(append, boxes, range(count)))
    return server, boxes
