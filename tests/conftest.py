import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.utils import translation

from domains.models import Domain, Membership, Organization, Role
from mailsec.queues import celery_queue_settings
from tests import netguard
from tests.domains import dns_world
from tests.knot import KnotServer
from tests.mailservers import lab_trust, mail_lab  # noqa: F401  (fixtures, shared)
from tests.reports import senders_world
from tests.servers import CeleryWorker, RedisServer, database_url, stop_orphaned_servers

netguard.install()
stop_orphaned_servers()  # those of a test run killed before its teardown


# --- real servers --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def celery_queue(redis_url):
    """Point the project's Celery app at the tests' Redis, on queues of this run's own (a
    prefix), so a shared Redis (CI's) never hands our tasks to anybody else's worker, or theirs
    to ours.

    Autouse, so it happens before any test touches the app: Celery caches its result backend
    on first use."""
    from mailsec.celery import app

    prefix = f"test-{uuid.uuid4().hex[:12]}-"
    app.conf.update(broker_url=redis_url, result_backend=redis_url, **celery_queue_settings(prefix))
    return prefix


@pytest.fixture(scope="session")
def knot(tmp_path_factory):
    """A real authoritative DNS server on loopback serving the test world (dns_world.py), and
    reverse DNS for the fixture reports' source addresses (reports/senders_world.py)."""
    server = KnotServer(
        tmp_path_factory.mktemp("knot"),
        dns_world.zones() | senders_world.zones(),
        signed=["test"],
        broken=["broken.test"],
    )
    server.start()
    # Validate from its keys, as the tests' worker does: a run asks its resolver for the
    # trust anchors' keys before judging, and the real root's are not in this world.
    anchors = override_settings(MAILSEC_DNSSEC_TRUST_ANCHORS=server.trust_anchors)
    anchors.enable()
    yield server
    anchors.disable()
    server.stop()


@pytest.fixture(scope="session")
def celery_worker(
    celery_queue, redis_url, knot, django_db_setup, django_db_blocker, tmp_path_factory
):
    """A real `celery worker` process, consuming this run's queue, on the test database, asking
    the tests' knot for DNS."""
    from django.db import connection

    with django_db_blocker.unblock():
        database = database_url(connection.settings_dict)
    worker = CeleryWorker(
        redis_url=redis_url,
        database=database,
        queue_prefix=celery_queue,
        log=tmp_path_factory.mktemp("celery") / "worker.log",
        extra_env={
            "MAILSEC_DNS_NAMESERVERS": f"{knot.host}:{knot.port}",
            "MAILSEC_DNSSEC_TRUST_ANCHORS": ",".join(knot.trust_anchors),
        },
    )
    yield worker
    worker.stop()


# --- the cast ------------------------------------------------------------------------------


def make_user(username: str, **extra):
    return get_user_model().objects.create_user(
        username=username, email=f"{username}@example.test", password="correct horse 42", **extra
    )


@pytest.fixture
def acme(db):
    return Organization.objects.create(name="Acme")


@pytest.fixture
def globex(db):
    return Organization.objects.create(name="Globex")


@pytest.fixture
def alice(acme):
    """Owner of Acme."""
    user = make_user("alice")
    Membership.objects.create(organization=acme, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def bob(acme):
    """Member of Acme: may add and edit domains."""
    user = make_user("bob")
    Membership.objects.create(organization=acme, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def victor(acme):
    """Viewer of Acme: reads only."""
    user = make_user("victor")
    Membership.objects.create(organization=acme, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def olga(globex):
    """Owner of Globex, the other team."""
    user = make_user("olga")
    Membership.objects.create(organization=globex, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def acme_domain(acme):
    return Domain.objects.create(organization=acme, name="acme.example")


@pytest.fixture
def globex_domain(globex):
    return Domain.objects.create(organization=globex, name="globex.example")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _test_settings(settings):
    """Pages render without a collectstatic manifest (the test of the served app runs
    collectstatic itself); a fast password hasher."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Every test asks from 127.0.0.1: the limit has tests of its own (test_password_reset.py).
    settings.MAILSEC_PASSWORD_RESET_RATE = 1_000_000


@pytest.fixture(autouse=True)
def _language_of_the_settings():
    """A request activates its reader's language in the thread and leaves it on: a test that
    follows, without a request, must not inherit the French of the one before."""
    yield
    translation.activate(django_settings.LANGUAGE_CODE)
