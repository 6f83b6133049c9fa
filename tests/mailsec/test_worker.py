"""A task executed by a real `celery worker` process through a real Redis."""

import pytest

from mailsec.models import WorkerHeartbeat
from mailsec.tasks import heartbeat


@pytest.mark.django_db(transaction=True)
def test_heartbeat_runs_on_a_real_worker(celery_worker):
    result = heartbeat.delay()
    try:
        hostname = result.get(timeout=60)
    except Exception as exc:
        pytest.fail(
            f"the worker did not run the task ({exc!r}); its log:\n{celery_worker.output()}"
        )
    assert hostname.startswith("test-")
    beat = WorkerHeartbeat.objects.get()
    assert beat.hostname == hostname


def test_heartbeat_page_warning_for_staff(client, db):
    from tests.conftest import make_user

    admin = make_user("root", is_staff=True)
    client.force_login(admin)
    assert "No background worker has reported yet" in client.get("/domains/").content.decode()
    heartbeat.apply(throw=True)
    assert "background worker" not in client.get("/domains/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_worker_reports_itself_as_it_starts(client, redis_url, tmp_path, django_db_blocker):
    """No "no background worker" banner for the first minute after a start: the worker writes
    its heartbeat when it is ready, before beat's first heartbeat task."""
    import time

    from django.db import connection

    from tests.conftest import make_user
    from tests.servers import CeleryWorker, database_url

    client.force_login(make_user("root", is_staff=True))
    assert "No background worker has reported yet" in client.get("/domains/").content.decode()
    worker = CeleryWorker(
        redis_url=redis_url,
        database=database_url(connection.settings_dict),
        queue_prefix=f"ready-{tmp_path.name}",  # its own queues: it takes nobody's tasks
        log=tmp_path / "worker.log",
    )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in worker.output():
            assert worker.process.poll() is None, worker.output()
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.2)
        beat = WorkerHeartbeat.objects.get()
        assert beat.hostname.startswith("test-")
        assert "background worker" not in client.get("/domains/").content.decode()
    finally:
        worker.stop()
