"""Uploads that cannot stall the site: the request only stores the files (RawInput) and answers
at once; the worker parses each on the `ingest` queue (reports.tasks.parse_upload_file), and the
upload's page follows their progress. A worker that dies while parsing leaves the file "running"
until the reaper (mailsec/reaper.py) queues it again; a file that has cost MAX_ATTEMPTS parses
is refused, so an input that kills the worker cannot do it forever."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from domains.messages import read_back
from reports import ingest
from reports.models import InputSource, InputStatus, RawInput, Upload, UploadFile

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
PENDING = (UploadFile.State.QUEUED, UploadFile.State.RUNNING)
# The parse task's limits (reports/tasks.py); the reaper counts a file lost past TIME_LIMIT.
TIME_LIMIT, SOFT_TIME_LIMIT = 1800, 1740


def create(organization, user, files, oversized: list[tuple[str, str]]) -> Upload:
    """Store every file of an upload for `organization` and queue each for parsing (once the
    upload is committed); a file too large to read is listed with its reason."""
    with transaction.atomic():
        upload = Upload.objects.create(organization=organization, uploaded_by=user)
        for file in files:
            _store(upload, file)
        for name, why in oversized:
            outcome = ingest.Outcome(name, "invalid", error=why)
            _finished(upload, name, UploadFile.State.DONE, outcomes=[outcome])
        queued = upload.files.filter(state=UploadFile.State.QUEUED).values_list("pk", flat=True)
        queued = list(queued)
        transaction.on_commit(lambda: [queue(pk) for pk in queued])
    return upload


def _store(upload: Upload, file) -> None:
    # A large upload already sits in a temporary file: let storage read it from there.
    path = getattr(file, "temporary_file_path", None)
    source = path() if path else file.read()
    try:
        with transaction.atomic():
            raw = ingest.keep_raw(
                source,
                file.name,
                via=InputSource.UPLOAD,
                organization=upload.organization,
                user=upload.uploaded_by,
            )
    except Exception:
        # One file that breaks storage must not lose the others. The errors are stored in
        # English (gettext_noop): the upload's page translates them when it shows them.
        logger.exception("Storing the upload %r failed", file.name)
        _finished(
            upload,
            file.name,
            UploadFile.State.FAILED,
            error=gettext_noop("Internal error: not stored."),
        )
        return
    UploadFile.objects.create(upload=upload, name=file.name[:500], raw=raw)


def _finished(upload, name: str, state: str, *, outcomes=(), error: str = "") -> None:
    UploadFile.objects.create(
        upload=upload,
        name=name[:500],
        state=state,
        finished_at=timezone.now(),
        outcomes=[asdict(o) for o in outcomes],
        error=error,
    )


def queue(file_id: int) -> None:
    from reports.tasks import parse_upload_file

    parse_upload_file.delay(file_id)


def parse(file_id: int) -> UploadFile | None:
    """Parse one uploaded file, unless it is already parsed (a message delivered twice) or
    deleted; returns the file as it ended."""
    claimed = UploadFile.objects.filter(pk=file_id, state__in=PENDING).update(
        state=UploadFile.State.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    file = UploadFile.objects.filter(pk=file_id).select_related("raw").first()
    if not claimed or file is None:
        return file
    if file.raw is None:
        return _finish(
            file, UploadFile.State.FAILED, error=gettext_noop("Its stored copy was deleted.")
        )
    if file.attempts > MAX_ATTEMPTS:
        why = f"the worker stopped {MAX_ATTEMPTS} times while parsing it"
        return _refuse(file, why)  # stored as "Refused: {why}." (STORED_ERRORS)
    try:
        outcomes = ingest.ingest_kept(file.raw, file.name)
    except SoftTimeLimitExceeded:
        return _refuse(file, f"parsing it took more than {SOFT_TIME_LIMIT // 60} minutes")
    except Exception:
        logger.exception("Parsing the upload %r failed", file.name)
        return _finish(
            file, UploadFile.State.FAILED, error=gettext_noop("Internal error: not parsed.")
        )
    return _finish(file, UploadFile.State.DONE, outcomes)


def _refuse(file: UploadFile, why: str) -> UploadFile:
    """Refuse the input for good: the same bytes uploaded again are not parsed again."""
    RawInput.objects.filter(pk=file.raw_id).update(status=InputStatus.REFUSED, reason=why)
    outcome = ingest.Outcome(file.name, "invalid", error=f"Refused: {why}.")
    return _finish(file, UploadFile.State.DONE, [outcome])


def _finish(file: UploadFile, state: str, outcomes=(), *, error: str = "") -> UploadFile:
    file.state, file.finished_at, file.error = state, timezone.now(), error
    file.outcomes = [asdict(o) for o in outcomes]
    file.save(update_fields=["state", "finished_at", "error", "outcomes"])
    return file


# The upload's own reasons, stored in English as they are written here: shown_error() gives
# them back in the reader's language. (A parser's refusal reasons are shown as stored.)
STORED_ERRORS = [
    gettext_noop("Larger than %(size)s: not read."),
    gettext_noop("The files of one upload may hold %(size)s in all: not read."),
    gettext_noop("Internal error: not stored."),
    gettext_noop("Its stored copy was deleted."),
    gettext_noop("Internal error: not parsed."),
    gettext_noop("Refused: the worker stopped %(count)s times while parsing it."),
    gettext_noop("Refused: parsing it took more than %(minutes)s minutes."),
]


def shown_error(stored: str) -> str:
    """An error this module stored, in the reader's language; any other text as it is."""
    found = read_back(stored or "", STORED_ERRORS)
    if found is None:
        return stored
    message, values = found
    return gettext(message) % values


def outcomes_of(files) -> list[ingest.Outcome]:
    """The outcomes of the files done so far, in file order, as ingest.Outcome."""
    return [ingest.Outcome(**outcome) for file in files for outcome in file.outcomes]
