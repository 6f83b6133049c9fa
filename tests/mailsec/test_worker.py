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


@pytest.mark.django_db(transaction=True)
def test_two_beats_are_seen_on_the_staff_pages(client, redis_url, tmp_path):
    """Two `celery beat` processes started by mistake: each records its own heartbeat, and
    the staff pages say two schedulers run; a beat stopped cleanly takes its heartbeat away."""
    import time

    from django.db import connection

    from mailsec.models import BeatHeartbeat
    from tests.conftest import make_user
    from tests.servers import CeleryBeat, database_url

    client.force_login(make_user("root", is_staff=True))
    beats = [
        CeleryBeat(
            redis_url=redis_url,
            database=database_url(connection.settings_dict),
            queue_prefix=f"beats-{tmp_path.name}-",  # nobody consumes these queues
            workdir=tmp_path / f"beat{i}",
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while BeatHeartbeat.objects.count() < 2:
            for beat in beats:
                assert beat.process.poll() is None, beat.output()
            assert time.monotonic() < deadline, [beat.output() for beat in beats]
            time.sleep(0.2)
        page = client.get("/domains/").content.decode()
        assert "2 schedulers (<code>celery beat</code>) are running" in page
        for identity in BeatHeartbeat.objects.values_list("identity", flat=True):
            assert identity in page
        beats.pop().stop()
        assert BeatHeartbeat.objects.count() == 1
        assert "schedulers" not in client.get("/domains/").content.decode()
    finally:
        for beat in beats:
            beat.stop()


def test_one_beat_is_no_warning(client, db):
    from django.utils import timezone

    from mailsec.models import BeatHeartbeat
    from tests.conftest import make_user

    client.force_login(make_user("root", is_staff=True))
    BeatHeartbeat.objects.create(identity="a:1:x")
    BeatHeartbeat.objects.create(
        identity="b:2:y", seen_at=timezone.now() - BeatHeartbeat.SEEN_WITHIN * 2
    )
    assert "schedulers" not in client.get("/domains/").content.decode()
    BeatHeartbeat.objects.filter(identity="b:2:y").update(seen_at=timezone.now())
    assert "2 schedulers" in client.get("/domains/").content.decode()
