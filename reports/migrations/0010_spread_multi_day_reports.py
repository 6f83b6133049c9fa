"""Rollups made before reports were spread over the days they cover counted a report's
messages on the day it began: this takes each multi-day report's messages off that day and
spreads them again (reports/spread.py). A migration rather than a command: it must run once on
every installation, and before the charts read the rollups; it reads only the reports whose
period covers more than one UTC day (a small share), and all their records are still stored
(retention of records comes with the same release, after this)."""

from django.db import migrations


def respread(apps, schema_editor):
    from reports import spread

    reports = apps.get_model("reports", "AggregateReport").objects.filter(
        organization__isnull=False
    )
    Rollup = apps.get_model("reports", "DailyRollup")
    rows = reports.values_list("pk", "organization_id", "domain", "begin", "end")
    # Found first, written after: no read stays open across the writes.
    multi_day = [
        (pk, team, domain, days)
        for pk, team, domain, begin, end in rows.iterator(chunk_size=2000)
        if len(days := spread.covered_days(begin, end)) > 1
    ]
    with schema_editor.connection.cursor() as cursor:
        for pk, team, domain, days in multi_day:
            was = [spread.DayShare(days[0].day, 0, 1)]
            cursor.execute(*spread.rollup_statement(team, domain, pk, was, sign=-1))
            cursor.execute(*spread.rollup_statement(team, domain, pk, days))
            Rollup.objects.filter(
                organization_id=team, domain=domain, day=days[0].day, messages=0
            ).delete()


class Migration(migrations.Migration):
    dependencies = [("reports", "0009_mailboxes_over_pop3")]
    operations = [migrations.RunPython(respread, migrations.RunPython.noop, elidable=True)]
