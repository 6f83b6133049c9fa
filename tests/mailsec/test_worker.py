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
