"""One pass over a report mailbox of 2,000 messages, then a second pass with nothing new.

    .venv/bin/python bench/bench_mailbox.py [--messages 2000] [--records 5] [--repeat 3]
    DATABASE_URL=postgres://root@127.0.0.1/test .venv/bin/python bench/bench_mailbox.py

A real dovecot on loopback (tests/dovecot.py) holds `--messages` report e-mails, each a
distinct aggregate report of `--records` records, gzip-attached as the big reporters send
them. mailsec's pass (reports.fetch.run_pass) lists the UIDs, fetches the messages in
batches over IMAPS, stores every report, and moves each message to the processed folder;
the second pass finds nothing new. Each repeat uses a fresh account and fresh database
rows. Printed: seconds and messages per second of each pass (median of the repeats).

Database: a throwaway SQLite file, unless DATABASE_URL is set (PostgreSQL: a throwaway
database on that server). Nothing leaves the machine: the test suite's network guard is
installed.
"""

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="mailsec-bench-mailbox-"))
USE_SQLITE = not os.environ.get("DATABASE_URL")
if USE_SQLITE:
    os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR / 'bench.sqlite3'}"
os.environ["MAILSEC_VAR_DIR"] = str(WORKDIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)
os.environ["MAILSEC_ALLOW_PRIVATE_TARGETS"] = "on"
if not os.environ.get("MAILSEC_ENCRYPTION_KEY"):
    from cryptography.fernet import Fernet

    os.environ["MAILSEC_ENCRYPTION_KEY"] = Fernet.generate_key().decode()

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from domains.models import Organization  # noqa: E402
from reports import fetch, secrets  # noqa: E402
from reports.models import AggregateReport, Mailbox  # noqa: E402
from tests import netguard  # noqa: E402
from tests.dovecot import DovecotServer  # noqa: E402

netguard.install()


def report(n: int, records: int, run: str) -> bytes:
    begin = 1_700_000_000 + n * 3600
    rows = "".join(
        f"<record><row><source_ip>198.51.100.{(n + i) % 250 + 1}</source_ip><count>{i + 1}"
        "</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
        "<spf>pass</spf></policy_evaluated></row><identifiers><header_from>bench.example"
        "</header_from></identifiers><auth_results><dkim><domain>bench.example</domain>"
        "<selector>s1</selector><result>pass</result></dkim><spf><domain>bench.example"
        "</domain><scope>mfrom</scope><result>pass</result></spf></auth_results></record>"
        for i in range(records)
    )
    return (
        '<?xml version="1.0"?><feedback><report_metadata><org_name>reporter.example'
        "</org_name><email>dmarc@reporter.example</email>"
        f"<report_id>{run}-{n}</report_id><date_range><begin>{begin}</begin>"
        f"<end>{begin + 86399}</end></date_range></report_metadata><policy_published>"
        "<domain>bench.example</domain><p>reject</p></policy_published>"
        f"{rows}</feedback>"
    ).encode()


def mail(n: int, records: int, run: str) -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc@reporter.example"
    message["To"] = "rua@bench.example"
    message["Subject"] = f"Report domain: bench.example Submitter: reporter.example {run}-{n}"
    message["Message-ID"] = f"<{run}-{n}@reporter.example>"
    message.set_content("This is an aggregate report from reporter.example.")
    message.add_attachment(
        gzip.compress(report(n, records, run)),
        maintype="application",
        subtype="gzip",
        filename=f"reporter.example!bench.example!{n}.xml.gz",
    )
    return message.as_bytes()


def fill(server: DovecotServer, user: str, messages: int, records: int) -> float:
    started = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    imap = server.client(user)
    try:
        for n in range(messages):
            imap.append("INBOX", None, None, mail(n, records, run))
    finally:
        imap.logout()
    return time.perf_counter() - started


def one_round(server, organization, messages: int, records: int) -> tuple[float, float]:
    user = f"bench-{uuid.uuid4().hex[:8]}@bench.example"
    password = uuid.uuid4().hex
    server.add_user(user, password)
    filled = fill(server, user, messages, records)
    print(f"  {messages} messages appended in {filled:.1f} s", flush=True)
    mailbox = Mailbox.objects.create(
        organization=organization,
        name=user,
        host=server.host,
        port=server.imaps_port,
        tls_mode="implicit",
        username=user,
        password_encrypted=secrets.encrypt(password),
    )
    started = time.perf_counter()
    first = fetch.run_pass(mailbox.pk)
    first_seconds = time.perf_counter() - started
    if (first.state, first.fetched, first.imported) != ("done", messages, messages):
        raise SystemExit(f"first pass: {first.state} {first.fetched} {first.error}")
    started = time.perf_counter()
    second = fetch.run_pass(mailbox.pk)
    second_seconds = time.perf_counter() - started
    if (second.state, second.total) != ("done", 0):
        raise SystemExit(f"second pass: {second.state} {second.total} {second.error}")
    left = len(server.messages(user, "INBOX"))
    filed = len(server.messages(user, "dmarc/processed"))
    if (left, filed) != (0, messages):
        raise SystemExit(f"after the pass: {left} left in INBOX, {filed} processed")
    return first_seconds, second_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--records", type=int, default=5, help="records per report")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    test_db = None
    if USE_SQLITE:
        call_command("migrate", verbosity=0)
    else:
        connection.settings_dict["TEST"]["NAME"] = f"mailsec_bench_{os.getpid()}"
        test_db = connection.creation.create_test_db(verbosity=0, serialize=False)
    server = DovecotServer(WORKDIR / "dovecot")
    try:
        server.start()
        print(f"Database: {connection.vendor}; dovecot on {server.host}:{server.imaps_port}")
        organization = Organization.objects.create(name="Bench")
        rounds = []
        with override_settings(MAILSEC_TLS_CA_FILE=str(server.ca_file)):
            for _ in range(args.repeat):
                rounds.append(one_round(server, organization, args.messages, args.records))
                print(f"  first pass {rounds[-1][0]:.2f} s, second {rounds[-1][1]:.3f} s")
        stored = AggregateReport.objects.count()
        first = statistics.median(r[0] for r in rounds)
        second = statistics.median(r[1] for r in rounds)
        print(f"\n{stored} reports stored in {args.repeat} rounds")
        print(f"first pass:  {first:.2f} s, {args.messages / first:,.0f} messages/s")
        print(
            f"second pass: {second:.3f} s, {args.messages / second:,.0f} messages/s (nothing new)"
        )
    finally:
        server.stop()
        if test_db:
            connection.creation.destroy_test_db(test_db, verbosity=0)
        connection.close()
        shutil.rmtree(WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    main()
