"""One pass over a report mailbox: fetch what is new, store it, then file it away.

The order is what makes a pass safe to interrupt anywhere: a message is stored (its reports,
or its refusal, kept) together with its ProcessedMessage row in one transaction, and only
after that commit is it moved out of the source folder. A pass that dies in between leaves
a stored, unmoved message: the next pass moves it without storing it again. UIDs already
processed (by folder, UIDVALIDITY and UID) are never fetched again.

Over POP3 (`Pop3Pass`) the same order holds with the server's unique ids (UIDL, remembered as
Pop3Message rows) and deletion instead of a move: stored and committed, then DELE, then QUIT,
which is when the server deletes. A pass that loses its connection before QUIT deleted
nothing: the next pass deletes what it remembers without storing it again.

Two passes never work on one mailbox at once: a pass holds a lease on the mailbox (a
conditional UPDATE of `locked_until`, renewed after every batch); a second pass finds it held
and skips. A worker killed mid-pass leaves a lease that runs out, and the next pass resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from reports import secrets
from reports.ingest import ingest_input, keep_refused
from reports.mailbox import ImapSession, MailboxError, ServerSettings
from reports.models import (
    InputSource,
    InputStatus,
    Mailbox,
    MailboxPass,
    MailProtocol,
    Pop3Message,
    ProcessedMessage,
)
from reports.parsing.streams import size_text
from reports.pop3 import Listed, Pop3Session

log = logging.getLogger(__name__)

BATCH = 50  # messages fetched per round trip
BATCH_BYTES = 32 * 1024 * 1024  # POP3: the messages of a batch held at once, at most about
LEASE = timedelta(minutes=5)  # renewed after every batch

Progress = Callable[[MailboxPass], None]


class MailboxGone(Exception):
    """The mailbox was deleted during its pass."""


def claim(mailbox_id: int) -> bool:
    now = timezone.now()
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    return bool(Mailbox.objects.filter(free, pk=mailbox_id).update(locked_until=now + LEASE))


def renew(mailbox_id: int) -> None:
    Mailbox.objects.filter(pk=mailbox_id).update(locked_until=timezone.now() + LEASE)


def release(mailbox_id: int) -> None:
    Mailbox.objects.filter(pk=mailbox_id).update(locked_until=None)


def run_pass(
    mailbox_id: int,
    pass_id: int | None = None,
    *,
    trigger: str = "schedule",
    progress: Progress | None = None,
    force_copy: bool = False,
) -> MailboxPass | None:
    """One pass over the mailbox; returns its MailboxPass (state done, failed or skipped), or
    None when the mailbox was deleted meanwhile."""
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if mailbox is None:
        return None
    run = MailboxPass.objects.filter(pk=pass_id, mailbox=mailbox).first() if pass_id else None
    if run is None:
        run = MailboxPass.objects.create(mailbox=mailbox, trigger=trigger)
    if not claim(mailbox.pk):
        return _finish(run, MailboxPass.State.SKIPPED)
    run.state, run.started_at = MailboxPass.State.RUNNING, timezone.now()
    run.save(update_fields=["state", "started_at"])
    try:
        password = secrets.decrypt(mailbox.password_encrypted)
        server = ServerSettings.of(mailbox, password)
        kind = PASSES[mailbox.protocol]
        with kind.connect(server, force_copy=force_copy) as session:
            kind(mailbox, run, session, progress).run()
    except (MailboxError, secrets.SecretUnreadable) as exc:
        run.error = str(exc)
        return _finish(run, MailboxPass.State.FAILED)
    except MailboxGone:
        return run
    except Exception as exc:
        if not isinstance(exc, DatabaseError) and connection.is_usable():
            raise
        # The database dropped the connection mid-pass (a restart, a failover): every later
        # query on it fails. A fresh one records the pass as failed and frees the lease, so
        # the task's retry claims the mailbox at once instead of after the lease (5 minutes)
        # and the pass is not left "running" for an hour. The records' COPY runs on
        # psycopg's own cursor: its errors are not Django's, and are retried as theirs.
        if not connection.in_atomic_block and not connection.is_usable():
            connection.close()
        run.error = f"Database error during the pass: {exc}"[:500]
        _finish(run, MailboxPass.State.FAILED)
        if isinstance(exc, DatabaseError):
            raise
        raise DatabaseError(str(exc)) from exc
    finally:
        release(mailbox.pk)
    return _finish(run, MailboxPass.State.DONE)


def _finish(run: MailboxPass, state: str) -> MailboxPass:
    run.state, run.finished_at = state, timezone.now()
    # update(), not save(): if the mailbox (and with it this row) was deleted during the pass,
    # there is nothing left to record, rather than a row to insert for a missing mailbox.
    MailboxPass.objects.filter(pk=run.pk).update(
        state=run.state, finished_at=run.finished_at, started_at=run.started_at, error=run.error
    )
    mailbox = run.mailbox
    if state == MailboxPass.State.SKIPPED:
        return run
    changes = {"last_pass": run}
    if run.error:
        changes.update(last_error=run.error, last_error_at=run.finished_at)
    Mailbox.objects.filter(pk=mailbox.pk).update(**changes)
    # A pass not started by the scheduler (fetch now, or the first pass of a new mailbox)
    # leaves no next poll planned: plan it one interval on, rather than "due now" forever.
    unplanned = Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=run.finished_at)
    Mailbox.objects.filter(unplanned, pk=mailbox.pk, enabled=True).update(
        next_poll_at=run.finished_at + timedelta(minutes=mailbox.interval_minutes)
    )
    return run


class Pass:
    """A pass over an IMAP mailbox."""

    def __init__(self, mailbox: Mailbox, run: MailboxPass, imap: ImapSession, progress):
        self.mailbox, self.stats, self.imap = mailbox, run, imap
        self.progress = progress or (lambda run: None)
        self.folder = mailbox.folder

    @staticmethod
    def connect(server: ServerSettings, *, force_copy: bool = False) -> ImapSession:
        return ImapSession.open(server, force_copy=force_copy)

    def run(self) -> None:
        mailbox = self.mailbox
        if not mailbox.read_only:
            for folder in {mailbox.processed_folder, mailbox.invalid_folder} - {""}:
                self.imap.ensure_folder(folder)
        uidvalidity = self.imap.select(self.folder, readonly=mailbox.read_only)
        uids = self.imap.uids()
        known = dict(
            ProcessedMessage.objects.filter(
                mailbox=mailbox, folder=self.folder, uidvalidity=uidvalidity, uid__in=uids
            ).values_list("uid", "moved")
        )
        new = [uid for uid in uids if uid not in known]
        self.stats.total = len(new)
        self._save_progress()
        if not mailbox.read_only:
            # Stored by an earlier pass that stopped before it could move them.
            leftovers = [uid for uid, moved in known.items() if not moved]
            self._file_away(uidvalidity, leftovers)
        for start in range(0, len(new), BATCH):
            if not MailboxPass.objects.filter(pk=self.stats.pk).exists():
                raise MailboxGone  # deleted (with its passes) while we worked
            batch = new[start : start + BATCH]
            messages = self.imap.fetch(batch)
            # One commit for the batch (each message in a savepoint of its own): a commit
            # waits for the disk, and the messages move only after it anyway.
            with transaction.atomic():
                for uid in batch:
                    if uid in messages:  # gone meanwhile (another client expunged it): skip
                        self._store(uidvalidity, uid, messages[uid])
            if not mailbox.read_only:
                self._file_away(uidvalidity, batch)
            renew(mailbox.pk)
            self._save_progress()

    def _store(self, uidvalidity: int, uid: int, message: bytes) -> None:
        def remember(status: str) -> None:
            ProcessedMessage.objects.create(
                mailbox=self.mailbox,
                folder=self.folder,
                uidvalidity=uidvalidity,
                uid=uid,
                status=status,
                moved=False,
            )

        name = f"{self.mailbox.name}: {self.folder} UID {uid}"
        store(self.mailbox, self.stats, message, name, remember, f"message UID {uid}")

    def _file_away(self, uidvalidity: int, uids: list[int]) -> None:
        """Move stored messages to their folders, one command per folder, then mark them."""
        rows = ProcessedMessage.objects.filter(
            mailbox=self.mailbox,
            folder=self.folder,
            uidvalidity=uidvalidity,
            uid__in=uids,
            moved=False,
        ).values_list("pk", "uid", "status")
        targets: dict[str, list[tuple[int, int]]] = {}
        for pk, uid, status in rows:
            refused = status in (InputStatus.REFUSED, InputStatus.PARTIAL)
            target = self.mailbox.invalid_folder if refused else self.mailbox.processed_folder
            targets.setdefault(target, []).append((pk, uid))
        for target, messages in targets.items():
            if target:
                self.imap.move([uid for _, uid in messages], target)
            ProcessedMessage.objects.filter(pk__in=[pk for pk, _ in messages]).update(moved=True)

    def _save_progress(self) -> None:
        save_progress(self.stats, self.progress)


def save_progress(stats: MailboxPass, progress: Progress) -> None:
    MailboxPass.objects.filter(pk=stats.pk).update(
        total=stats.total,
        fetched=stats.fetched,
        imported=stats.imported,
        duplicates=stats.duplicates,
        invalid=stats.invalid,
        error=stats.error,
    )
    progress(stats)


def store(
    mailbox: Mailbox, stats: MailboxPass, message: bytes, name: str, remember, what: str
) -> bool:
    """Store one message (its reports, or its refusal) and `remember(status)` it, in one
    savepoint; counted in `stats`. A message that fails is left unremembered (False): the next
    pass tries it again, and one bad message never stops the pass."""
    try:
        with transaction.atomic():
            outcomes = ingest_input(
                message, name, via=InputSource.MAILBOX, organization=mailbox.organization
            )
            statuses = [o.status for o in outcomes]
            remember(_status(statuses))
    except Exception:
        if not connection.is_usable():
            # The database went away (a restart), not this message: the pass fails and the
            # task retries it at once, rather than calling every message left "not stored"
            # until the next poll.
            raise
        log.exception("mailbox %s: %s could not be stored", mailbox.pk, what)
        stats.error = f"{what} could not be stored (see the worker's log)"
        return False
    stats.fetched += 1
    stats.imported += statuses.count("imported")
    stats.duplicates += statuses.count("duplicate")
    stats.invalid += statuses.count("invalid")
    return True


class Pop3Pass:
    """A pass over a POP3 mailbox: UIDL, RETR what is new, store it, DELE it, QUIT."""

    def __init__(self, mailbox: Mailbox, run: MailboxPass, pop: Pop3Session, progress):
        self.mailbox, self.stats, self.pop = mailbox, run, pop
        self.progress = progress or (lambda run: None)
        self.limit = settings.MAILSEC_REPORT_MAX_BYTES

    @staticmethod
    def connect(server: ServerSettings, *, force_copy: bool = False) -> Pop3Session:
        return Pop3Session.open(server)  # force_copy is about IMAP moves: nothing to do here

    def run(self) -> None:
        try:
            self._transfer()
        except MailboxError as exc:
            raise self._explained(exc, "nothing was deleted from the server") from None
        try:
            self.pop.quit()  # the server deletes what was marked now
        except MailboxError as exc:
            raise self._explained(exc, "the server may not have deleted them") from None

    def _explained(self, error: MailboxError, what: str) -> MailboxError:
        if self.mailbox.read_only or not self.stats.fetched:
            return error
        return MailboxError(
            error.stage,
            f"{error}. {self.stats.fetched} messages were stored; {what} (POP3 deletes at "
            "QUIT only): the next pass deletes them without storing them again",
        )

    def _transfer(self) -> None:
        mailbox = self.mailbox
        listed = self.pop.listing()
        remembered = self._remembered({m.uidl for m in listed})
        new = [m for m in listed if m.uidl not in remembered]
        self.stats.total = len(new)
        save_progress(self.stats, self.progress)
        if not mailbox.read_only:
            # Stored by an earlier pass whose deletions never reached QUIT.
            self.pop.delete([m.number for m in listed if remembered.get(m.uidl) is False])
        batch, held = [], 0
        for message in new:
            if message.size > self.limit:
                self._refuse_too_big(message, message.size)
                continue
            data, size = self.pop.retrieve(message.number, self.limit)
            if data is None:  # the server's LIST understated it
                self._refuse_too_big(message, size)
                continue
            batch.append((message, data))
            held += len(data)
            if len(batch) >= BATCH or held >= BATCH_BYTES:
                self._store_batch(batch)
                batch, held = [], 0
        if batch:
            self._store_batch(batch)

    def _remembered(self, listed: set[str]) -> dict[str, bool]:
        """{unique id: kept} of the listed messages stored before; the rows of messages the
        server no longer lists are forgotten."""
        rows = Pop3Message.objects.filter(mailbox=self.mailbox).values_list("pk", "uidl", "kept")
        remembered, gone = {}, []
        for pk, uidl, kept in rows.iterator():
            if uidl in listed:
                remembered[uidl] = kept
            else:
                gone.append(pk)
        for start in range(0, len(gone), 500):
            Pop3Message.objects.filter(pk__in=gone[start : start + 500]).delete()
        return remembered

    def _check_alive(self) -> None:
        if not MailboxPass.objects.filter(pk=self.stats.pk).exists():
            raise MailboxGone  # deleted (with its passes) while we worked

    def _store_batch(self, batch: list[tuple[Listed, bytes]]) -> None:
        self._check_alive()
        stored = []
        # One commit for the batch (each message in a savepoint of its own); DELE after it.
        with transaction.atomic():
            for message, data in batch:
                name = f"{self.mailbox.name}: POP3 message {message.uidl}"
                what = f"message {message.uidl}"
                if store(self.mailbox, self.stats, data, name, self._remember(message), what):
                    stored.append(message.number)
        if not self.mailbox.read_only:
            self.pop.delete(stored)
        renew(self.mailbox.pk)
        save_progress(self.stats, self.progress)

    def _remember(self, message: Listed):
        def remember(status: str, *, kept: bool = False) -> None:
            Pop3Message.objects.create(
                mailbox=self.mailbox, uidl=message.uidl, status=status, kept=kept
            )

        return remember

    def _refuse_too_big(self, message: Listed, size: int) -> None:
        """Left on the server (a person may want it) and remembered, so it is not fetched
        again; what is kept as its refused input is its header."""
        reason = (
            f"the message is {size_text(size)}, over the {size_text(self.limit)} limit: "
            "left on the server, not fetched (only its header is kept)"
        )
        head = self.pop.head(message.number)
        name = f"{self.mailbox.name}: POP3 message {message.uidl}"
        self._check_alive()
        with transaction.atomic():
            keep_refused(
                head or name.encode(),
                name,
                reason,
                via=InputSource.MAILBOX,
                organization=self.mailbox.organization,
            )
            self._remember(message)(InputStatus.REFUSED, kept=True)
        self.stats.invalid += 1
        self.stats.error = f"message {message.uidl}: {reason}"
        save_progress(self.stats, self.progress)


PASSES = {MailProtocol.IMAP: Pass, MailProtocol.POP3: Pop3Pass}


def _status(statuses: list[str]) -> str:
    if set(statuses) == {"invalid"}:
        return InputStatus.REFUSED
    if "invalid" in statuses:
        return InputStatus.PARTIAL
    if set(statuses) == {"duplicate"}:
        return InputStatus.DUPLICATE
    return InputStatus.IMPORTED


def due_mailboxes(now=None) -> list[int]:
    """Claim the mailboxes whose poll is due (conditional UPDATE), return their ids."""
    now = now or timezone.now()
    due = []
    candidates = Mailbox.objects.filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), enabled=True
    ).values_list("pk", "interval_minutes", "next_poll_at")
    for pk, minutes, previous in candidates:
        claimed = Mailbox.objects.filter(pk=pk, next_poll_at=previous).update(
            next_poll_at=now + timedelta(minutes=minutes)
        )
        if claimed:
            due.append(pk)
    return due


# A pass queued longer ago was lost (no worker took it): it no longer counts as going.
QUEUED_WINDOW = timedelta(minutes=10)


class Busy(Exception):
    """A pass of this mailbox is queued or running already."""

    def __init__(self, run: MailboxPass):
        state = (
            "running now: wait for it to finish"
            if run.state == "running"
            else ("already queued: wait for it to run")
        )
        super().__init__(f"A pass over this mailbox is {state}.")
        self.run = run


def in_progress(now) -> Q:
    """Passes still going: queued recently, or running while the mailbox's lease is held (a
    killed worker's pass stays "running", but its lease runs out)."""
    queued = Q(state=MailboxPass.State.QUEUED, created_at__gte=now - QUEUED_WINDOW)
    running = Q(state=MailboxPass.State.RUNNING, mailbox__locked_until__gt=now)
    return queued | running


def request_pass(mailbox: Mailbox, user=None, *, trigger: str = "manual") -> MailboxPass:
    """Queue a pass now ("fetch now"); its MailboxPass shows the progress. Busy while another
    pass of the mailbox is going."""
    from reports.tasks import fetch_mailbox

    going = MailboxPass.objects.filter(in_progress(timezone.now()), mailbox=mailbox).first()
    if going is not None:
        raise Busy(going)
    run = MailboxPass.objects.create(mailbox=mailbox, trigger=trigger, requested_by=user)
    transaction.on_commit(lambda: fetch_mailbox.delay(mailbox.pk, run.pk))
    return run
