"""The dispatcher's claim on a table of a million domains, in PostgreSQL:

    .venv/bin/python -m bench.scale.claim_million [--domains 1000000]

A database of its own (dropped at the end), migrated, filled with generate_series (due times
spread over six hours, as a steady installation's are); then EXPLAIN (ANALYZE, BUFFERS) of the
query that picks a batch (domains.scheduling.Schedule.claim_batch) and of one claim UPDATE,
with 1 % of the domains due and with all of them due (every domain added at once)."""

import argparse
import os
import subprocess
import sys
import uuid

import psycopg

from bench.scale.cluster import POSTGRES, ROOT, admin_connection


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=1_000_000)
    args = parser.parse_args()
    name = f"mailsec_claim_{uuid.uuid4().hex[:8]}"
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES}/{name}"
    env = {**os.environ, "DATABASE_URL": url, "MAILSEC_SECRET_KEY": "claim-only-" * 6}
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
            env=env,
            check=True,
            cwd=ROOT,
        )
        env["DJANGO_SETTINGS_MODULE"] = "mailsec.settings"
        query = subprocess.run(
            [sys.executable, "-c", SQL_OF_CLAIM],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        with psycopg.connect(url, autocommit=True) as sql:
            organization = sql.execute(
                "INSERT INTO domains_organization (name, created_at, alert_events, alert_digest)"
                " VALUES ('Million', now(), '[]', false)"
                " RETURNING id"
            ).fetchone()[0]
            sql.execute(
                """
                INSERT INTO domains_domain (organization_id, name, check_interval, notes,
                    dkim_selectors, created_at, updated_at, next_check_at, mail_access_hosts,
                    probe_interval, next_probe_at, score, grade, grade_partial)
                SELECT %s, 'd' || i || '.example', interval '6 hours', '', '[]', now(), now(),
                       now() + (i %% 21600) * interval '1 second', '[]', interval '24 hours',
                       now() + (i %% 86400) * interval '1 second', 80, 'B', false
                FROM generate_series(1, %s) AS i
                """,
                (organization, args.domains),
            )
            sql.execute("VACUUM ANALYZE domains_domain")
            for label, due in (("1 % due", "0.01"), ("all due", "1")):
                # Due: the first `due` share of the spread is moved into the past.
                sql.execute(
                    "UPDATE domains_domain SET next_check_at = now() - interval '1 minute'"
                    " WHERE id %% 10000 < %s * 10000",
                    (float(due),),
                )
                sql.execute("ANALYZE domains_domain")
                print(f"\n=== {args.domains:,} domains, {label}: the batch query")
                plan = sql.execute("EXPLAIN (ANALYZE, BUFFERS) " + query).fetchall()
                print("\n".join(row[0] for row in plan))
                print(f"=== {label}: one claim")
                pk = sql.execute(
                    "SELECT id FROM domains_domain WHERE next_check_at <= now() LIMIT 1"
                ).fetchone()[0]
                plan = sql.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) UPDATE domains_domain"
                    " SET next_check_at = now() + check_interval"
                    " WHERE id = %s AND (next_check_at IS NULL OR next_check_at <= now())",
                    (pk,),
                ).fetchall()
                print("\n".join(row[0] for row in plan))
    finally:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


# The batch query exactly as Django writes it, with now() for the time.
SQL_OF_CLAIM = """
import django
django.setup()
from django.db import connection
from django.db.models import F
from django.db.models.functions import Now
from domains.models import Domain
from domains.scheduling import CHECKS, CLAIM_BATCH
query = (Domain.objects.filter(CHECKS.due(Now())).order_by(F("next_check_at").asc(nulls_first=True))
         .values_list("pk", flat=True)[:CLAIM_BATCH])
sql, params = query.query.sql_with_params()
print(sql % tuple(params))
"""

if __name__ == "__main__":
    sys.exit(main())
