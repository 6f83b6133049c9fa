"""The reaper (beat, every minute): nothing stays "running" past its time limit.

A worker killed mid-task (SIGKILL, the OOM killer, a power cut) leaves rows saying "running" or
"queued" that nobody will finish: with the file broker its messages are gone for good (the
transport deletes a message as it hands it out), and Redis gives them back only after its
visibility timeout (two hours). The database says what was under way, so the reaper settles it
from there: a run past its task's time limit, or a message waiting far longer than any queue
should make it wait, is marked failed (so no page spins for ever) and queued again. Every task
is safe to run twice: checks are idempotent, a mailbox pass holds a lease, an upload file is
claimed by a conditional UPDATE and refused after uploads.MAX_ATTEMPTS.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

# Beyond a task's own time limit: the worker needs a moment to kill it and say so.
MARGIN = timedelta(minutes=2)
# A message still waiting after this long was lost (a full queue drains long before).
QUEUED_PATIENCE = timedelta(minutes=30)
# Past every limit above: what a test (or a look at the reaper by hand) waits for.
LATE_ENOUGH = timedelta(hours=2)
# An input kept but never parsed (its import was killed) is parsed again after this long.
UNPARSED_PATIENCE = timedelta(hours=1)


def reap(now=None) -> dict[str, int]:
    """Settle what dead workers left; returns how many of each were queued again."""
    now = now or timezone.now()
    return {
        "manual_checks": manual_checks(now),
        "scheduled_checks": scheduled_checks(now),
        "mailbox_passes": mailbox_passes(now),
        "upload_files": upload_files(now),
        "unparsed_inputs": unparsed_inputs(now),
    }


def _limit(task) -> timedelta:
    return timedelta(seconds=task.time_limit) + MARGIN


def manual_checks(now) -> int:
    """A "check now" running past the check's time limit, or never started: failed, and the
    domain checked again."""
    from domains.models import ManualCheck
    from domains.tasks import check_domain_task

    State = ManualCheck.State
    stale = Q(state=State.RUNNING, requested_at__lt=now - _limit(check_domain_task)) | Q(
        state=State.QUEUED, requested_at__lt=now - QUEUED_PATIENCE
    )
    reaped = 0
    for pk, domain_id, state in ManualCheck.objects.filter(stale).values_list(
        "pk", "domain_id", "state"
    ):
        why = "the worker stopped while checking" if state == State.RUNNING else "never started"
        error = f"Lost: {why} (was the background worker stopped?). Checked again."
        if ManualCheck.objects.filter(pk=pk, state=state).update(state=State.FAILED, error=error):
            transaction.on_commit(lambda d=domain_id: check_domain_task.delay(d))
            reaped += 1
    return reaped


def scheduled_checks(now) -> int:
    """A domain claimed by the dispatcher (its next check moved one interval ahead) whose
    check never finished: due again now. The claim happened at next_check_at - interval; a
    check that finished since set last_checked_at after it."""
    from domains.models import Domain

    claimed_at = ExpressionWrapper(F("next_check_at") - F("check_interval"), DateTimeField())
    lost = Domain.objects.alias(claimed_at=claimed_at).filter(
        Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=F("claimed_at")),
        next_check_at__isnull=False,
        claimed_at__lt=now - QUEUED_PATIENCE,
    )
    return lost.update(next_check_at=now)


def mailbox_passes(now) -> int:
    """A pass running past fetch_mailbox's time limit, or never started: failed, and a new
    pass queued (the mailbox's lease runs out on its own)."""
    from reports.models import Mailbox, MailboxPass
    from reports.tasks import fetch_mailbox

    State = MailboxPass.State
    stale = Q(state=State.RUNNING, started_at__lt=now - _limit(fetch_mailbox)) | Q(
        state=State.QUEUED, created_at__lt=now - QUEUED_PATIENCE
    )
    reaped = 0
    for pk, mailbox_id, state in MailboxPass.objects.filter(stale).values_list(
        "pk", "mailbox_id", "state"
    ):
        why = "the worker stopped during the pass" if state == State.RUNNING else "never started"
        error = f"Lost: {why} (was the background worker stopped?). Another pass is queued."
        done = MailboxPass.objects.filter(pk=pk, state=state)
        if done.update(state=State.FAILED, error=error, finished_at=now):
            if state == State.RUNNING:  # its lease died with it: the next pass need not wait
                Mailbox.objects.filter(pk=mailbox_id).update(locked_until=None)
            transaction.on_commit(lambda m=mailbox_id: fetch_mailbox.delay(m))
            reaped += 1
    return reaped


def upload_files(now) -> int:
    """An uploaded file parsing past its time limit, or never started: queued again (it is
    refused once it has cost reports.uploads.MAX_ATTEMPTS parses)."""
    from reports import uploads
    from reports.models import UploadFile

    State = UploadFile.State
    limit = timedelta(seconds=uploads.TIME_LIMIT) + MARGIN
    stale = Q(state=State.RUNNING, started_at__lt=now - limit) | Q(
        state=State.QUEUED, queued_at__lt=now - QUEUED_PATIENCE
    )
    reaped = 0
    for pk, state in UploadFile.objects.filter(stale).values_list("pk", "state"):
        if UploadFile.objects.filter(pk=pk, state=state).update(state=State.QUEUED, queued_at=now):
            transaction.on_commit(lambda pk=pk: uploads.queue(pk))
            reaped += 1
    return reaped


def unparsed_inputs(now) -> int:
    """An input kept but never parsed (import_reports killed between keeping and parsing it)
    is parsed once more; one whose second parse was lost too is refused, saying so."""
    from reports import ingest
    from reports.models import InputStatus, RawInput, UploadFile
    from reports.tasks import parse_raw_input

    kept = RawInput.objects.filter(status=InputStatus.REFUSED)
    pending_uploads = UploadFile.objects.filter(state__in=[UploadFile.State.QUEUED, "running"])
    kept = kept.exclude(pk__in=pending_uploads.values("raw_id"))
    kept.filter(reason=ingest.REPARSING, received_at__lt=now - 3 * UNPARSED_PATIENCE).update(
        reason=ingest.INTERRUPTED
    )
    reaped = 0
    stale = kept.filter(reason=ingest.NOT_PARSED, received_at__lt=now - UNPARSED_PATIENCE)
    for pk in stale.values_list("pk", flat=True):
        again = RawInput.objects.filter(pk=pk, reason=ingest.NOT_PARSED)
        if again.update(reason=ingest.REPARSING):
            transaction.on_commit(lambda pk=pk: parse_raw_input.delay(pk))
            reaped += 1
    return reaped
