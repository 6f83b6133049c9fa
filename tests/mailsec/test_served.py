"""What `make run` starts: the Procfile's web app, worker and scheduler under honcho, served by
gunicorn with collected static files, all stopped by one Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers import database_url, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def wait_for_log(path: Path, needles: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if all(needle in text for needle in needles):
            return
        time.sleep(0.2)
    raise AssertionError(f"never saw {needles} in the output:\n{text[-3000:]}")


@pytest.mark.django_db(transaction=True)
def test_procfile_serves_and_stops_on_ctrl_c(tmp_path, django_db_blocker):
    from django.db import connection

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # files broker, as make run
    env.update(
        PATH=f"{BIN}:{env['PATH']}",
        MAILSEC_VAR_DIR=str(tmp_path),
        MAILSEC_SECRET_KEY="s" * 50,
        DATABASE_URL=database_url(connection.settings_dict),
        WEB_CONCURRENCY="1",
        MAILSEC_WORKER_CONCURRENCY="1",
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    log = open(tmp_path / "honcho.log", "wb")  # noqa: SIM115
    honcho = subprocess.Popen(
        [
            str(BIN / "honcho"),
            "--procfile",
            "mailsec/Procfile",
            "--app-root",
            ".",
            "start",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, honcho, timeout=60)
        status, headers, _ = fetch(f"http://127.0.0.1:{port}/")
        assert (status, headers["Location"]) == (302, "/login/?next=/")
        status, _, body = fetch(f"http://127.0.0.1:{port}/login/")
        assert status == 302  # a fresh database: the login page leads to the set-up page
        status, _, body = fetch(f"http://127.0.0.1:{port}/setup/")
        assert status == 200
        stylesheet = re.search(rb'href="(/static/css/mailsec\.[0-9a-f]+\.css)"', body)
        assert stylesheet, "the page links a versioned stylesheet from the manifest"
        status, headers, css = fetch(f"http://127.0.0.1:{port}{stylesheet[1].decode()}")
        assert status == 200
        assert headers["Content-Type"].startswith("text/css")
        assert "max-age" in headers["Cache-Control"]
        assert b".topbar" in css
        wait_for_log(tmp_path / "honcho.log", ["celery@", " ready.", "beat: Starting"])
    finally:
        os.killpg(honcho.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        try:
            honcho.wait(timeout=30)
        finally:
            log.close()
    output = (tmp_path / "honcho.log").read_text(errors="replace")
    for name in ("web.1", "worker.1", "beat.1"):
        assert re.search(rf"{name} +\| ", output), f"{name} did not start:\n{output[-3000:]}"
    # Pool processes of a killed worker may take a moment to notice their parent is gone.
    deadline = time.monotonic() + 15
    while True:
        leftovers = subprocess.run(
            ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
        ).stdout
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert leftovers == "", f"processes still running: {leftovers}"
