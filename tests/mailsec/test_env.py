"""Settings come from the environment, strictly: a bad value names its variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mailsec.env import Env

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 50


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
        ("", False),
        ("  ", False),
    ],
)
def test_bool_accepts_the_usual_words(value, expected):
    assert Env({"MAILSEC_DEBUG": value}).bool("MAILSEC_DEBUG") is expected


@pytest.mark.parametrize("value", ["maybe", "2", "yes please", "tru"])
def test_bool_refuses_anything_else_and_names_the_variable(value):
    with pytest.raises(ImproperlyConfigured, match="MAILSEC_DEBUG"):
        Env({"MAILSEC_DEBUG": value}).bool("MAILSEC_DEBUG")


def test_unset_bool_takes_its_default():
    assert Env({}).bool("MAILSEC_DEBUG", default=True) is True


def test_int_in_range():
    assert Env({"PORT": "8080"}).int("PORT", 8000, minimum=1, maximum=65535) == 8080
    assert Env({}).int("PORT", 8000, minimum=1, maximum=65535) == 8000


@pytest.mark.parametrize("value", ["0", "65536", "-1", "80a", "8.5", "0x50"])
def test_int_refuses_bad_numbers(value):
    with pytest.raises(ImproperlyConfigured, match="PORT"):
        Env({"PORT": value}).int("PORT", 8000, minimum=1, maximum=65535)


def test_list_splits_and_strips():
    env = Env({"MAILSEC_ALLOWED_HOSTS": " mail.example.com , 127.0.0.1"})
    assert env.list("MAILSEC_ALLOWED_HOSTS", []) == ["mail.example.com", "127.0.0.1"]


def test_list_refuses_an_empty_item():
    with pytest.raises(ImproperlyConfigured, match="MAILSEC_ALLOWED_HOSTS"):
        Env({"MAILSEC_ALLOWED_HOSTS": "a.example,,b.example"}).list("MAILSEC_ALLOWED_HOSTS", [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:5353", [("127.0.0.1", 5353)]),
        ("127.0.0.1", [("127.0.0.1", 53)]),
        ("::1", [("::1", 53)]),
        ("[::1]:5353, 9.9.9.9", [("::1", 5353), ("9.9.9.9", 53)]),
        ("", []),
    ],
)
def test_nameservers(value, expected):
    assert (
        Env({"MAILSEC_DNS_NAMESERVERS": value}).nameservers("MAILSEC_DNS_NAMESERVERS") == expected
    )


@pytest.mark.parametrize(
    "value", ["dns.example.com", "127.0.0.1:99999", "127.0.0.1:abc", "[::1", "[::1]x", "1.2.3"]
)
def test_nameservers_refuses_names_and_bad_ports(value):
    with pytest.raises(ImproperlyConfigured, match="MAILSEC_DNS_NAMESERVERS"):
        Env({"MAILSEC_DNS_NAMESERVERS": value}).nameservers("MAILSEC_DNS_NAMESERVERS")


def test_database_urls():
    env = Env({"DATABASE_URL": "postgres://mailsec:pw@db.internal:5433/mailsec"})
    config = env.database("DATABASE_URL", default="sqlite:////tmp/x.sqlite3")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "mailsec")
    sqlite = Env({}).database("DATABASE_URL", default="sqlite:////tmp/x.sqlite3")
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    assert sqlite["NAME"] == "/tmp/x.sqlite3"


@pytest.mark.parametrize("value", ["mongodb://localhost/x", "not a url", "postgres://host:5432/"])
def test_database_refuses_unusable_urls(value):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        Env({"DATABASE_URL": value}).database("DATABASE_URL", default="sqlite:////tmp/x.sqlite3")


def test_redis_url():
    assert Env({}).redis_url("REDIS_URL") is None
    assert Env({"REDIS_URL": "redis://127.0.0.1:6379/0"}).redis_url("REDIS_URL").endswith("/0")
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        Env({"REDIS_URL": "http://127.0.0.1:6379"}).redis_url("REDIS_URL")


def test_secret_key_from_variable_or_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(GOOD_KEY + "\n")
    missing = tmp_path / "absent"
    assert Env({"K": GOOD_KEY}).secret_key("K", fallback_file=missing) == GOOD_KEY
    assert Env({"K_FILE": str(key_file)}).secret_key("K", fallback_file=missing) == GOOD_KEY
    # The file `make run` generates is the fallback.
    assert Env({}).secret_key("K", fallback_file=key_file) == GOOD_KEY


def test_secret_key_is_never_defaulted(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="No secret key"):
        Env({}).secret_key("K", fallback_file=tmp_path / "absent")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"K": "short"}, "too short"),
        ({"K": GOOD_KEY, "K_FILE": "/etc/hostname"}, "not both"),
        ({"K_FILE": "/nonexistent/key"}, "cannot read"),
    ],
)
def test_secret_key_errors(environ, message, tmp_path):
    with pytest.raises(ImproperlyConfigured, match=message):
        Env(environ).secret_key("K", fallback_file=tmp_path / "absent")


def test_empty_secret_file(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ImproperlyConfigured, match="empty"):
        Env({"K_FILE": str(empty)}).secret_key("K", fallback_file=tmp_path / "absent")


def test_choice():
    env = Env({"MAILSEC_LOG_LEVEL": "LOUD"})
    with pytest.raises(ImproperlyConfigured, match="MAILSEC_LOG_LEVEL"):
        env.choice("MAILSEC_LOG_LEVEL", "INFO", ["INFO", "DEBUG"])


# The real settings module, loaded in a fresh process, as a deployment would.


def load_settings(**overrides) -> subprocess.CompletedProcess:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("MAILSEC_", "DATABASE_", "REDIS_"))
    }
    environ.update(MAILSEC_SECRET_KEY=GOOD_KEY, DJANGO_SETTINGS_MODULE="mailsec.settings")
    environ.update(overrides)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.ALLOWED_HOSTS, s.MAILSEC_DNS_NAMESERVERS, "
        "s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL.split(':')[0], "
        "s.EMAIL_BACKEND.rsplit('.', 2)[1])"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_settings_module_loads_good_values():
    result = load_settings(
        MAILSEC_DEBUG="off",
        MAILSEC_ALLOWED_HOSTS="mailsec.example.com",
        MAILSEC_DNS_NAMESERVERS="127.0.0.1:5353",
        DATABASE_URL="postgres://u@127.0.0.1/x",
        REDIS_URL="redis://127.0.0.1:6379/2",
        MAILSEC_EMAIL_HOST="smtp.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "False ['mailsec.example.com'] [('127.0.0.1', 5353)] django.db.backends.postgresql "
        "redis smtp"
    )


def test_settings_module_defaults_need_no_server():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["django.db.backends.sqlite3", "filesystem", "console"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAILSEC_DEBUG", "sometimes"),
        ("PORT", "eighty"),
        ("MAILSEC_DNS_NAMESERVERS", "resolver.example"),
        ("MAILSEC_ALLOW_PRIVATE_TARGETS", "perhaps"),
        ("DATABASE_URL", "oracle-ish://x"),
        ("REDIS_URL", "localhost:6379"),
        ("MAILSEC_EMAIL_PORT", "70000"),
        ("MAILSEC_SECRET_KEY", "tiny"),
    ],
)
def test_settings_module_refuses_bad_values(name, value):
    overrides = {name: value}
    if name == "MAILSEC_EMAIL_PORT":
        overrides["MAILSEC_EMAIL_HOST"] = "smtp.example.com"
    result = load_settings(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("https://mailsec.example.org", "https://mailsec.example.org"),
        ("http://10.0.0.5:8000/", "http://10.0.0.5:8000"),
    ],
)
def test_site_url(value, expected):
    environ = {} if value is None else {"MAILSEC_SITE_URL": value}
    assert Env(environ).site_url("MAILSEC_SITE_URL") == expected


@pytest.mark.parametrize("value", ["mailsec.example.org", "ftp://x.org", "https://x.org/mailsec"])
def test_site_url_refuses_what_is_not_a_base_url(value):
    with pytest.raises(ImproperlyConfigured, match="MAILSEC_SITE_URL must be a base URL"):
        Env({"MAILSEC_SITE_URL": value}).site_url("MAILSEC_SITE_URL")
