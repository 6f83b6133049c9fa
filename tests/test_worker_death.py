"""A worker's death loses nothing (issue 13), against real `celery worker` processes on the
tests' Redis: a worker SIGKILLed mid-task leaves its run to the reaper, which fails it and queues
it again; a pool process SIGKILLed mid-task (the OOM killer) makes the worker give its task back
and exit, and the next worker runs it."""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone
from kombu import Exchange, Queue

from domains.models import Domain, ManualCheck
from domains.tasks import check_domain_task
from mailsec import reaper
from reports import secrets
from reports.models import Mailbox, MailboxPass
from reports.tasks import fetch_mailbox
from tests.servers import CeleryWorker, database_url

pytestmark = pytest.mark.django_db(transaction=True)


class SilentServer:
    """A TCP (or UDP) server on loopback that takes connections (or datagrams) and never
    answers, until `close_all` makes it hang up on every connection at once."""

    def __init__(self, kind=socket.SOCK_STREAM):
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.hang_up = threading.Event()
        if kind == socket.SOCK_STREAM:
            self.sock.listen(16)
            self.sock.settimeout(0.2)
            threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.hang_up.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections.append(conn)
        for conn in self.connections:
            conn.close()
        self.sock.close()

    def close_all(self):
        self.hang_up.set()


def start_worker(tmp_path, name: str, prefix: str, redis_url: str, **env) -> CeleryWorker:
    return CeleryWorker(
        redis_url=redis_url,
        database=database_url(connection.settings_dict),
        queue_prefix=prefix,
        log=tmp_path / f"{name}.log",
        extra_env=env,
    )


def send(task, args, queue: str) -> None:
    """Queue a task on one of this test's own queues, as mailsec's routes send to theirs (on
    Redis: the default exchange, the queue's name as routing key), so a message given back to
    Redis finds its queue again."""
    task.apply_async(args, queue=Queue(queue, Exchange(""), routing_key=queue))


def kill(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def pool_of(worker: CeleryWorker) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in out.stdout.split()]


def wait_until(condition, *workers: CeleryWorker, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(worker.output() for worker in workers)
            raise AssertionError(f"never happened: {what}\n{logs}")
        time.sleep(0.2)


def test_a_worker_killed_mid_pass_leaves_it_to_the_reaper(acme, redis_url, tmp_path, monkeypatch):
    imap = SilentServer()
    mailbox = Mailbox.objects.create(
        organization=acme,
        name="rua",
        host="127.0.0.1",
        port=imap.port,
        tls_mode="plain",
        allow_plaintext=True,
        username="u",
        password_encrypted=secrets.encrypt("p"),
    )
    prefix = f"death-{uuid.uuid4().hex[:8]}-"
    run = MailboxPass.objects.create(mailbox=mailbox, trigger="manual")
    worker = start_worker(tmp_path, "first", prefix, redis_url)
    try:
        send(fetch_mailbox, (mailbox.pk, run.pk), f"{prefix}ingest")
        wait_until(lambda: imap.connections, worker, what="the pass connects")
        kill([*pool_of(worker), worker.process.pid])  # the whole worker, as SIGKILL of make run's
        worker.process.wait(timeout=10)
    finally:
        worker.stop()
    time.sleep(1)
    run.refresh_from_db()
    assert run.state == "running"  # nobody is left to say otherwise

    # A minute later on beat, once the pass's time limit has run out: failed, and a new pass.
    monkeypatch.setattr(
        fetch_mailbox, "delay", lambda *args: send(fetch_mailbox, args, f"{prefix}ingest")
    )
    assert reaper.reap(timezone.now() + reaper.LATE_ENOUGH)["mailbox_passes"] == 1
    run.refresh_from_db()
    assert (run.state, run.error[:40]) == ("failed", "Lost: the worker stopped during the pass")
    imap.close_all()  # the server now hangs up: the next pass ends at once, failed
    again = start_worker(tmp_path, "second", prefix, redis_url)
    try:
        finished = MailboxPass.objects.exclude(pk=run.pk).filter(state__in=["done", "failed"])
        wait_until(finished.exists, again, what="the new pass ends")
    finally:
        again.stop()
    assert not MailboxPass.objects.filter(state__in=["queued", "running"]).exists()
    assert "closed" in finished.get().error or "connection" in finished.get().error.lower()


def test_a_pool_process_killed_mid_check_gives_the_check_to_the_next_worker(
    acme, knot, redis_url, tmp_path
):
    domain = Domain.objects.create(organization=acme, name="example.test")
    silent_dns = SilentServer(socket.SOCK_DGRAM)  # the first worker's checks wait and wait
    prefix = f"oom-{uuid.uuid4().hex[:8]}-"
    manual = ManualCheck.objects.create(domain=domain, requested_at=timezone.now())
    worker = start_worker(
        tmp_path, "first", prefix, redis_url, MAILSEC_DNS_NAMESERVERS=f"127.0.0.1:{silent_dns.port}"
    )
    try:
        send(check_domain_task, (domain.pk, manual.pk), f"{prefix}checks")
        running = ManualCheck.objects.filter(pk=manual.pk, state="running")
        wait_until(running.exists, worker, what="the check starts")
        kill(pool_of(worker))  # what the OOM killer does
        # The worker gives the task back to Redis and exits, for its supervisor to restart.
        assert worker.process.wait(timeout=30) == 1
    finally:
        worker.stop()
    assert "was killed (SIGKILL): the worker exits" in worker.output()
    again = start_worker(
        tmp_path,
        "second",
        prefix,
        redis_url,
        MAILSEC_DNS_NAMESERVERS=f"{knot.host}:{knot.port}",
        MAILSEC_DNSSEC_TRUST_ANCHORS=",".join(knot.trust_anchors),
    )
    try:
        done = ManualCheck.objects.filter(pk=manual.pk, state="done")
        wait_until(done.exists, worker, again, timeout=90, what="the check is run again")
    finally:
        again.stop()
    assert domain.runs.count() == 1
