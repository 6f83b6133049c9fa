"""The reaper (mailsec/reaper.py): nothing a dead worker left stays "running" or "queued" past
its time; each is marked failed and queued again (issue 13). And the broker settings that let a
task outlive its worker."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from domains import tasks as domain_tasks
from domains.models import Domain, ManualCheck
from mailsec import reaper
from reports import ingest, uploads
from reports import tasks as report_tasks
from reports.models import InputSource, InputStatus, Mailbox, MailboxPass, RawInput, UploadFile
from tests.conftest import client_for

ROOT = Path(__file__).resolve().parents[1]
NICE_INPUT = ROOT / "tests/fixtures/reports/aggregate/parsedmarc__nice-input.xml.gz"
LATER = timedelta(hours=2)  # past every time limit and every queue's patience


@pytest.fixture
def queued(monkeypatch):
    """What the reaper hands to Celery, by task: no worker runs here."""
    calls = {}

    def recorder(name):
        return lambda *args: calls.setdefault(name, []).append(args)

    monkeypatch.setattr(domain_tasks.check_domain_task, "delay", recorder("check"))
    monkeypatch.setattr(report_tasks.fetch_mailbox, "delay", recorder("fetch"))
    monkeypatch.setattr(report_tasks.parse_upload_file, "delay", recorder("upload"))
    monkeypatch.setattr(report_tasks.parse_raw_input, "delay", recorder("raw"))
    return calls


@pytest.fixture
def reap(django_capture_on_commit_callbacks):
    def run(now):
        with django_capture_on_commit_callbacks(execute=True):
            return reaper.reap(now)

    return run


def test_a_manual_check_left_running_is_failed_and_checked_again(acme, queued, reap):
    domain = Domain.objects.create(organization=acme, name="example.com")
    now = timezone.now()
    running = ManualCheck.objects.create(domain=domain, requested_at=now, state="running")
    assert reap(now + timedelta(minutes=2))["manual_checks"] == 0  # still within its limit
    assert reap(now + LATER)["manual_checks"] == 1
    running.refresh_from_db()
    assert running.state == "failed"
    assert running.error.startswith("Lost: the worker stopped while checking")
    assert queued["check"] == [(domain.pk,)]
    assert reap(now + LATER)["manual_checks"] == 0  # settled once


def test_a_manual_check_never_started_is_failed_and_checked_again(acme, queued, reap):
    domain = Domain.objects.create(organization=acme, name="example.com")
    now = timezone.now()
    waiting = ManualCheck.objects.create(domain=domain, requested_at=now)
    assert reap(now + timedelta(minutes=10))["manual_checks"] == 0  # a queue may be busy
    assert reap(now + LATER)["manual_checks"] == 1
    waiting.refresh_from_db()
    assert (waiting.state, queued["check"]) == ("failed", [(domain.pk,)])


def test_a_scheduled_check_claimed_and_lost_is_due_again(acme, queued, reap):
    now = timezone.now()
    interval = timedelta(hours=1)
    # Claimed at `now` (next check one interval ahead), never finished.
    lost = Domain.objects.create(
        organization=acme,
        name="lost.example",
        check_interval=interval,
        next_check_at=now + interval,
    )
    # Claimed at `now` and finished a second later.
    done = Domain.objects.create(
        organization=acme,
        name="done.example",
        check_interval=interval,
        next_check_at=now + interval,
        last_checked_at=now + timedelta(seconds=1),
    )
    assert reap(now + timedelta(minutes=5))["scheduled_checks"] == 0
    later = now + timedelta(minutes=45)
    assert reap(later)["scheduled_checks"] == 1
    lost.refresh_from_db()
    done.refresh_from_db()
    assert lost.next_check_at == later  # the dispatcher takes it on its next pass
    assert done.next_check_at == now + interval


def test_a_mailbox_pass_left_running_is_failed_and_another_queued(acme, queued, reap):
    mailbox = Mailbox.objects.create(organization=acme, name="m", host="imap.example", username="u")
    now = timezone.now()
    running = MailboxPass.objects.create(mailbox=mailbox, state="running", started_at=now)
    assert reap(now + timedelta(minutes=30))["mailbox_passes"] == 0  # a pass may take an hour
    assert reap(now + LATER)["mailbox_passes"] == 1
    running.refresh_from_db()
    assert running.state == "failed"
    assert "Another pass is queued" in running.error
    assert queued["fetch"] == [(mailbox.pk,)]


def test_an_upload_file_left_running_is_queued_again(bob, monkeypatch, queued, reap):
    response = client_for(bob).post(
        "/reports/upload/", {"files": [SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes())]}
    )
    assert response.status_code == 302
    file = UploadFile.objects.get()
    now = timezone.now()
    UploadFile.objects.filter(pk=file.pk).update(state="running", started_at=now, attempts=1)
    assert reap(now + timedelta(minutes=10))["upload_files"] == 0
    assert reap(now + LATER)["upload_files"] == 1
    file.refresh_from_db()
    assert (file.state, queued["upload"]) == ("queued", [(file.pk,)])
    assert uploads.parse(file.pk).state == "done"  # what the worker then does
    assert UploadFile.objects.get().outcomes[0]["status"] == "imported"


def test_an_input_whose_import_was_killed_is_parsed_again(acme, queued, reap):
    # import_reports killed between keeping the input and parsing it.
    raw = ingest.keep_raw(
        NICE_INPUT.read_bytes(), "nice.xml.gz", via=InputSource.COMMAND, organization=acme
    )
    assert (raw.status, raw.reason) == (InputStatus.REFUSED, "not parsed yet")
    now = timezone.now()
    assert reap(now + timedelta(minutes=5))["unparsed_inputs"] == 0
    assert reap(now + LATER)["unparsed_inputs"] == 1
    assert queued["raw"] == [(raw.pk,)]
    assert report_tasks.parse_raw_input(raw.pk) == 1  # what the worker then does
    raw.refresh_from_db()
    assert raw.status == InputStatus.IMPORTED
    assert reap(now + LATER)["unparsed_inputs"] == 0


def test_an_input_whose_second_parse_was_lost_too_is_settled(acme, queued, reap):
    raw = ingest.keep_raw(b"<feedback/>", "r.xml", via=InputSource.COMMAND, organization=acme)
    now = timezone.now()
    reap(now + LATER)
    assert RawInput.objects.get().reason == ingest.REPARSING
    reap(now + 4 * LATER)  # the worker never parsed it
    raw.refresh_from_db()
    assert (raw.status, raw.reason) == (InputStatus.REFUSED, ingest.INTERRUPTED)
    assert queued["raw"] == [(raw.pk,)]


def test_the_reaper_runs_on_beat():
    from django.conf import settings

    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["mailsec.tasks.reap_stale"] <= 60


def test_redis_gives_a_task_back_only_after_every_time_limit():
    """A task running longer than Redis's visibility timeout is handed to a second worker while
    the first still runs it: the timeout must exceed every task's time limit."""
    code = (
        "import json, django; django.setup(); from django.conf import settings;"
        "from mailsec.celery import app; app.loader.import_default_modules();"
        "limits = {n: t.time_limit or app.conf.task_time_limit for n, t in app.tasks.items()"
        " if not n.startswith('celery.')};"
        "print(json.dumps([settings.CELERY_BROKER_TRANSPORT_OPTIONS, limits,"
        " settings.CELERY_TASK_ACKS_LATE, settings.CELERY_TASK_REJECT_ON_WORKER_LOST]))"
    )
    env = dict(
        os.environ, REDIS_URL="redis://127.0.0.1:1/0", DJANGO_SETTINGS_MODULE="mailsec.settings"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    options, limits, acks_late, reject_on_lost = json.loads(out.strip().splitlines()[-1])
    assert "reports.tasks.fetch_mailbox" in limits and "mailsec.tasks.reap_stale" in limits
    longest = max(limits.values())
    assert options["visibility_timeout"] > longest + reaper.MARGIN.total_seconds()
    assert acks_late and reject_on_lost
