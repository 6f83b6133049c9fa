"""Real local servers for the tests, each on loopback, started on demand and stopped at the end."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

# Servers the fixtures start in a pytest temporary directory (their configuration or data is
# there), which a killed test run leaves running.
ORPHAN_BINARIES = {"dovecot", "knotd", "redis-server"}


def stop_orphaned_servers() -> int:
    """A test run killed outright (SIGKILL, a timeout) leaves the servers it started running,
    adopted by PID 1 and holding the fixed loopback ports of the next run. Stop those: a server
    of a test run still going has that run's pytest as its parent, not PID 1."""
    marker = os.path.join(tempfile.gettempdir(), "pytest-of-")
    stopped = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = [
                a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")
            ]
        except (OSError, IndexError, ValueError):
            continue
        if parent != 1 or not args[0] or Path(args[0].split()[0]).name not in ORPHAN_BINARIES:
            continue
        try:
            where = os.readlink(proc / "cwd")  # redis rewrites its title, not its directory
        except OSError:
            where = ""
        if any(marker in text for text in (*args, where)):
            try:
                os.kill(int(proc.name), signal.SIGTERM)
                stopped += 1
            except OSError:
                pass
    return stopped


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen | None = None, timeout: float = 10, host="127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


def need_binary(name: str, package: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        pytest.fail(
            f"{name} is not installed: `make test` installs the Debian package {package} "
            f"(as root); or run `apt-get install {package}`.",
            pytrace=False,
        )
    return path


class ServerProcess:
    """A server the tests run as a child process, logging to `log_path`: stopping it, its
    log, and `with` (subclasses set `process` and `_log` in start(), and add their clean-up
    to stop())."""

    process: subprocess.Popen | None = None
    _log = None

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None:
            # SIGTERM: the server stops its children and removes its sockets itself.
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""


class RedisServer:
    """A throwaway redis-server, or the one REDIS_URL names (as in CI)."""

    def __init__(self, workdir: Path):
        self.process = None
        self.url = os.environ.get("REDIS_URL") or self._start(workdir)

    def _start(self, workdir: Path) -> str:
        binary = need_binary("redis-server", "redis-server")
        port = free_port()
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, self.process)
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for another process to open the database these settings name."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"no DATABASE_URL for the engine {engine}")


class _CeleryProcess:
    """A celery process of the tests with its log (self.process, self.log, self.log_path)."""

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class CeleryWorker(_CeleryProcess):
    """`celery -A mailsec worker` in its own process, on the tests' broker and database."""

    def __init__(
        self,
        *,
        redis_url: str,
        database: str,
        queue_prefix: str,
        log: Path,
        extra_env: dict[str, str] | None = None,
        concurrency: int = 2,
    ):
        self.log_path = log
        env = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=database)
        env["MAILSEC_ALLOW_PRIVATE_TARGETS"] = "on"
        env["MAILSEC_QUEUE_PREFIX"] = queue_prefix  # it consumes all of mailsec's queues
        env.update(extra_env or {})
        self.log = open(log, "wb")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "mailsec",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"test-{os.getpid()}@%h",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )


class CeleryBeat(_CeleryProcess):
    """`celery -A mailsec beat` in its own process, on the tests' broker and database (its
    tasks go to the queues of `queue_prefix`)."""

    def __init__(
        self,
        *,
        redis_url: str,
        database: str,
        queue_prefix: str,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "beat.log"
        env = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=database)
        env["MAILSEC_QUEUE_PREFIX"] = queue_prefix
        env.update(extra_env or {})
        self.log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "mailsec",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(workdir / "celerybeat-schedule"),
                "--pidfile",
                "",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
