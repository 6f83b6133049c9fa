import atexit
import logging
import os
import secrets
import signal
import socket
import time

from celery import Celery
from celery.signals import beat_init, before_task_publish, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")

app = Celery("mailsec")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logger = logging.getLogger(__name__)


@app.on_after_configure.connect
def _prepare_broker_folders(sender, **kwargs):
    """The filesystem transport (used when REDIS_URL is unset) needs its folders to exist."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
    backend = sender.conf.result_backend or ""
    if backend.startswith("file://"):
        os.makedirs(backend.removeprefix("file://"), exist_ok=True)


@worker_ready.connect
def _report_ready(sender, **kwargs):
    """The worker says it is there as soon as it is ready, with the heartbeat the pages read:
    without it the "no background worker" banner showed until beat's first heartbeat task ran,
    a minute after a start."""
    from django.db import connections
    from django.utils import timezone

    from mailsec.models import WorkerHeartbeat

    try:
        WorkerHeartbeat.objects.update_or_create(
            hostname=sender.hostname, defaults={"seen_at": timezone.now()}
        )
    except Exception:
        logger.exception("Could not record the worker's heartbeat")
    finally:
        # Pool processes forked later must not share this process's database connection.
        connections.close_all()


@worker_ready.connect
def _watch_the_pool(sender, **kwargs):
    """A pool process killed from outside (the kernel's OOM killer sends SIGKILL) leaves the
    prefork pool unable to hand out work: the worker receives tasks and never runs them, and
    hangs in its own shutdown too. So the worker gives its unacknowledged tasks back to the
    queue and exits at once; its supervisor (`make run`, systemd) starts a fresh one."""
    pool = getattr(getattr(sender, "pool", None), "_pool", None)
    join = getattr(pool, "_join_exited_workers", None)
    if join is None:
        return  # not a prefork pool

    def join_and_check(*args, **kwargs):
        before = list(pool._pool)
        result = join(*args, **kwargs)
        killed = [
            process
            for process in before
            if process not in pool._pool
            and process.exitcode == -signal.SIGKILL
            and not getattr(process, "_controlled_termination", False)  # revoked, terminated
            and not getattr(process, "_mailsec_timed_out", False)  # its hard time limit
        ]
        if killed and not kwargs.get("shutdown") and not (args and args[0]):
            pids = ", ".join(str(process.pid) for process in killed)
            logger.critical("Pool process %s was killed (SIGKILL): the worker exits", pids)
            _exit_now(sender)
        return result

    pool._join_exited_workers = join_and_check
    # The pool kills a process past a task's hard time limit itself (TERM, then KILL): that is
    # no outside kill, and the pool recovers from it.
    timeouts = getattr(pool, "_timeout_handler", None)
    trywaitkill = getattr(timeouts, "_trywaitkill", None)
    if trywaitkill is not None:

        def mark_and_kill(process):
            process._mailsec_timed_out = True
            return trywaitkill(process)

        timeouts._trywaitkill = mark_and_kill


def _exit_now(consumer) -> None:
    try:
        channel = consumer.task_consumer.channel
        # On Redis a BRPOP may be waiting on the server for this worker: it would take the
        # very message given back below and hand it to a process about to exit. Its connection
        # is closed first (kombu keeps it in _in_poll), so the server drops the BRPOP.
        waiting = getattr(channel, "_in_poll", None)
        if waiting is not None:
            waiting.disconnect()
        channel.qos.restore_unacked_once()
    except Exception:
        logger.exception("Could not give the unacknowledged tasks back")
    logging.shutdown()
    os._exit(1)


# --- beat's own heartbeat: two schedulers by mistake are seen (mailsec.models.BeatHeartbeat) ---

_beat = {"identity": None, "written": 0.0}


@beat_init.connect
def _beat_started(sender, **kwargs):
    _beat["identity"] = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    _record_beat()
    # A beat stopped cleanly says so, so that its successor is not taken for a second one.
    atexit.register(_forget_beat)


@before_task_publish.connect
def _beat_sending(sender=None, **kwargs):
    """In the beat process only (its identity is set), at most every SEND_EVERY."""
    from mailsec.models import BeatHeartbeat

    if _beat["identity"] is None:
        return
    if time.monotonic() - _beat["written"] >= BeatHeartbeat.SEND_EVERY.total_seconds():
        _record_beat()


def _record_beat() -> None:
    from django.db import connections
    from django.utils import timezone

    from mailsec.models import BeatHeartbeat

    _beat["written"] = time.monotonic()
    try:
        BeatHeartbeat.objects.update_or_create(
            identity=_beat["identity"], defaults={"seen_at": timezone.now()}
        )
    except Exception:
        logger.exception("Could not record beat's heartbeat")
    finally:
        # Beat writes twice a minute at most: no connection is kept (a database restart
        # would leave it broken for the next write).
        connections.close_all()


def _forget_beat() -> None:
    from django.db import connections

    from mailsec.models import BeatHeartbeat

    try:
        BeatHeartbeat.objects.filter(identity=_beat["identity"]).delete()
    except Exception:
        logger.exception("Could not remove beat's heartbeat")
    finally:
        connections.close_all()
