"""The harness's rows, written through mailsec's own models in a process of their own (the
harness itself talks to the database in SQL only, so it never depends on the caller's Django
settings):

    DATABASE_URL=... python -m bench.scale.seed spec.json   # prints the ids as JSON

The spec names the domains, the alerting ones, the webhook, the mailboxes and the MX
addresses whose probes are stored first. Every monitored domain starts not due (the harness
makes them due at once when it starts the clock) and with its probes not due: the DNS checks
judge the mail servers from stored probes, made here by one real probe run to loopback
(nothing listens there: each is refused at once), as production shares one probe per server
across all the domains that use it.
"""

import json
import os
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from domains import scheduling  # noqa: E402
from domains.models import (  # noqa: E402
    AlertChannel,
    ChannelKind,
    CheckRun,
    Domain,
    Membership,
    Organization,
    Role,
    RunStatus,
)
from reports import secrets  # noqa: E402
from reports.models import Mailbox  # noqa: E402

LATER = timedelta(days=30)
BATCH = 2000


def seed(spec: dict) -> dict:
    now = timezone.now()
    organization = Organization.objects.create(name="Scale")
    owner = get_user_model().objects.create_user(
        username="scale-owner", password=spec["password"], is_staff=True, is_superuser=True
    )
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    AlertChannel.objects.create(
        organization=organization, kind=ChannelKind.WEBHOOK, name="sink", target=spec["webhook"]
    )
    # The probes first, on a team of their own: one domain per provider is probed for real.
    probing = Organization.objects.create(name="Scale probes")
    seeds = Domain.objects.bulk_create(
        Domain(organization=probing, name=name, next_check_at=now + LATER) for name in spec["probe"]
    )
    scheduling.run_probes([d.pk for d in seeds])
    Domain.objects.filter(organization=probing).update(
        next_check_at=now + LATER, next_probe_at=now + LATER
    )
    for start in range(0, len(spec["domains"]), BATCH):
        Domain.objects.bulk_create(
            Domain(
                organization=organization,
                name=name,
                next_check_at=now + LATER,
                next_probe_at=now + LATER,
            )
            for name in spec["domains"][start : start + BATCH]
        )
    # An earlier run with a top grade: these domains' first check drops it, and alerts.
    for domain in Domain.objects.filter(organization=organization, name__in=spec["alerting"]):
        earlier = now - timedelta(hours=6)
        run = CheckRun.objects.create(
            domain=domain,
            name=domain.name,
            started_at=earlier,
            finished_at=earlier,
            status=RunStatus.COMPLETE,
            score=100,
            grade="A+",
            categories={},
            trigger="schedule",
        )
        Domain.objects.filter(pk=domain.pk).update(
            last_run=run, last_checked_at=earlier, score=100, grade="A+", graded_at=earlier
        )
    mailboxes = [
        Mailbox.objects.create(
            organization=organization,
            name=box["user"],
            host=box["host"],
            port=box["port"],
            tls_mode="implicit",
            username=box["user"],
            password_encrypted=secrets.encrypt(box["password"]),
            next_poll_at=now + LATER,
        ).pk
        for box in spec["mailboxes"]
    ]
    client = Client()
    client.force_login(owner)
    return {
        "organization": organization.pk,
        "owner": owner.pk,
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "mailboxes": mailboxes,
        "some_domain": Domain.objects.filter(organization=organization).order_by("pk")[0].pk,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as spec:
        print(json.dumps(seed(json.load(spec))))
