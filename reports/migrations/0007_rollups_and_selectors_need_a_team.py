"""Rollups and selectors exist only for a team's reports: after 0006 every row has one."""

import django.db.models.deletion
from django.db import migrations, models


def team():
    return models.ForeignKey(
        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="domains.organization"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("domains", "0004_run_details_pruned"),
        ("reports", "0006_reports_to_their_teams"),
    ]

    operations = [
        migrations.AlterField(model_name="dailyrollup", name="organization", field=team()),
        migrations.AlterField(model_name="reportedselector", name="organization", field=team()),
    ]
