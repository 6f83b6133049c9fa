"""The pieces of an installation, each a process of its own as on separate machines:
PostgreSQL (the machine's; a database of the harness's own), a private Redis, knot behind the
delaying forwarder, one beat, workers with their own queues, and the web app (gunicorn).

The harness is their supervisor, as systemd is in production: `supervise()` starts again a
worker that died (one whose pool process was killed exits on purpose, mailsec/celery.py).
Nothing listens or connects beyond 127.0.0.0/8.
"""

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from cryptography.fernet import Fernet

from bench.scale.world import World
from tests.knot import KnotServer
from tests.servers import CeleryBeat, free_port, need_binary, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("MAILSEC_SCALE_POSTGRES", "postgres://postgres@127.0.0.1:5432")


class PostgresMissing(RuntimeError):
    pass


def renice(pid: int, nice: int) -> None:
    """Every thread of `pid` at `nice` (Linux keeps a niceness per thread)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise PostgresMissing(
            f"The scale harness needs PostgreSQL at {POSTGRES} (MAILSEC_SCALE_POSTGRES), as CI "
            f"has it (.ci/run starts it): {error}"
        ) from None


@dataclass
class Worker:
    name: str
    queues: list[str]
    concurrency: int
    process: subprocess.Popen | None = None
    log: Path | None = None
    restarts: int = 0
    expected_exit: bool = False
    extra_env: dict = field(default_factory=dict)

    def pool_children(self) -> list[int]:
        """The worker's pool processes (children of any of its threads)."""
        pids = []
        for path in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
                pids += [int(pid) for pid in path.read_text().split()]
        return sorted(pids)


@dataclass
class Cluster:
    workdir: Path
    world: World
    database: str = field(default_factory=lambda: f"mailsec_scale_{uuid.uuid4().hex[:8]}")
    slow_delay: float = 1.5
    # The background pieces (workers, beat, knot and the forwarder, which stand in for other
    # machines and the network's resolvers) run at this niceness, the web app at 0: on one
    # machine that gives the web app the cores first, as its own machine would (0: all equal).
    nice: int = 10
    prefix: str = field(default_factory=lambda: f"scale-{uuid.uuid4().hex[:6]}-")

    def __post_init__(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.redis_port = free_port()
        self.web_port = free_port()
        self.workers: dict[str, Worker] = {}
        self.beats: list[CeleryBeat] = []
        self.redis_process = None
        self.web = None
        self.knot = None
        self.forwarder = None
        self.sql: psycopg.Connection | None = None
        self.env = {}

    # --- databases and servers ---------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"{POSTGRES}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        """A private redis-server, persisting as production's should (appendonly): a restart
        keeps the queued tasks."""
        binary = need_binary("redis-server", "redis-server")
        (self.workdir / "redis").mkdir(exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115  (closed with the process)
        self.redis_process = subprocess.Popen(
            [
                *(binary, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", ""),
                *("--appendonly", "yes", "--appendfsync", "everysec"),
                *("--dir", str(self.workdir / "redis")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.redis_port, self.redis_process)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def stop_redis(self) -> None:
        if self.redis_process is not None:
            self.redis_process.terminate()  # SHUTDOWN: the append-only file is written out
            self.redis_process.wait(timeout=30)
            self.redis_process = None

    def start(self, web: bool = True) -> None:
        admin = admin_connection()
        with admin:
            admin.execute(f'CREATE DATABASE "{self.database}"')
        self.start_redis()
        self.knot = KnotServer(
            self.workdir / "knot", self.world.zones, signed=["test"], broken=self.world.broken_zones
        )
        # Signing 10,000 names takes knot more than the tests' 10 s on a loaded machine.
        self.knot._wait_until_serving = functools.partial(
            self.knot._wait_until_serving, timeout=180
        )
        self.knot.start()
        renice(self.knot.process.pid, self.nice)
        self._start_forwarder()
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MAILSEC_QUEUE_PREFIX": self.prefix,
            "MAILSEC_VAR_DIR": str(self.workdir / "var"),
            "MAILSEC_SECRET_KEY": uuid.uuid4().hex * 2,
            "MAILSEC_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            # The resolver is the forwarder in front of knot, as the tests' worker asks knot.
            "MAILSEC_DNS_NAMESERVERS": f"127.0.0.1:{self.forwarder_port}",
            "MAILSEC_DNSSEC_TRUST_ANCHORS": ",".join(self.knot.trust_anchors),
            # The mail servers are on loopback (127.0.2.x); nothing else is reachable anyway.
            "MAILSEC_ALLOW_PRIVATE_TARGETS": "on",
            "MAILSEC_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        self.env.pop("MAILSEC_DEBUG", None)
        self.manage("migrate", "--noinput", "--verbosity", "0")
        self.sql = psycopg.connect(self.database_url, autocommit=True)
        if web:
            self.manage("collectstatic", "--noinput", "--verbosity", "0")

    def _start_forwarder(self) -> None:
        slow_file = self.workdir / "slow-names.txt"
        slow_file.write_text("".join(f"{name}\n" for name in self.world.slow))
        self.forwarder_port = free_port()
        self.forwarder_log = open(self.workdir / "forwarder.log", "ab")  # noqa: SIM115
        args = [sys.executable, "-m", "bench.dns_forwarder"]
        args += ["--upstream", f"{self.knot.host}:{self.knot.port}", "--port"]
        args += [str(self.forwarder_port), "--slow-delay", str(self.slow_delay)]
        if self.world.slow:
            args += ["--slow", f"@{slow_file}"]
        self.forwarder = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=self.forwarder_log,
            stderr=subprocess.STDOUT,
            preexec_fn=self._niced,
        )
        wait_for_port(self.forwarder_port, self.forwarder)

    def manage(self, *args: str, env: dict | None = None) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def seed(self, spec: dict, env: dict | None = None) -> dict:
        path = self.workdir / "seed.json"
        path.write_text(json.dumps(spec))
        result = subprocess.run(
            [sys.executable, "-m", "bench.scale.seed", str(path)],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"seed:\n{result.stdout}{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def profile_pages(self, paths: list[str]) -> dict:
        """Each page's time and queries, rendered against this database (bench/scale/pages.py)."""
        result = subprocess.run(
            [sys.executable, "-m", "bench.scale.pages", *paths],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pages:\n{result.stdout}{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    # --- mailsec's processes -----------------------------------------------------------

    def start_worker(self, name: str, queues: list[str], concurrency: int, env=None) -> Worker:
        worker = self.workers.get(name) or Worker(name, queues, concurrency)
        worker.log = self.workdir / f"worker-{name}.log"
        worker.extra_env = env or worker.extra_env
        out = open(worker.log, "ab")  # noqa: SIM115  (the child holds it)
        worker.process = subprocess.Popen(
            [
                *(str(BIN / "celery"), "-A", "mailsec", "worker", "--loglevel", "INFO"),
                *("--concurrency", str(concurrency), "--hostname", f"{name}@scale"),
                *("--queues", ",".join(self.prefix + q for q in queues)),
                *("--without-gossip", "--without-mingle"),
            ],
            env={**self.env, **worker.extra_env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=self._niced,  # its pool processes inherit it
        )
        out.close()
        worker.expected_exit = False
        self.workers[name] = worker
        return worker

    def wait_ready(self, names=None, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for name in names or list(self.workers):
            worker = self.workers[name]
            while " ready." not in worker.log.read_text(errors="replace"):
                tail = worker.log.read_text(errors="replace")[-3000:]
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker {name} exited:\n{tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} not ready:\n{tail}")
                time.sleep(0.2)

    def supervise(self) -> list[str]:
        """Start again every worker that died (as systemd's Restart=always); their names."""
        restarted = []
        for worker in self.workers.values():
            if worker.process is not None and worker.process.poll() is not None:
                if worker.expected_exit:
                    continue
                worker.restarts += 1
                self.start_worker(worker.name, worker.queues, worker.concurrency)
                restarted.append(worker.name)
        return restarted

    def stop_worker(self, name: str) -> None:
        worker = self.workers[name]
        worker.expected_exit = True
        if worker.process.poll() is None:
            worker.process.terminate()
            try:
                worker.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()

    def start_beat(self) -> CeleryBeat:
        beat = CeleryBeat(
            redis_url=self.redis_url,
            database=self.database_url,
            queue_prefix=self.prefix,
            workdir=self.workdir / f"beat{len(self.beats)}",
            extra_env={k: v for k, v in self.env.items() if k.startswith(("MAILSEC_", "PYTHON"))},
        )
        self.beats.append(beat)
        renice(beat.process.pid, self.nice)
        return beat

    def _niced(self) -> None:
        os.nice(self.nice)

    def start_web(self) -> None:
        self.web_log = open(self.workdir / "web.log", "ab")  # noqa: SIM115
        self.web = subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", "python:mailsec.gunicorn_conf", "mailsec.wsgi"],
            env={**self.env, "PORT": str(self.web_port), "MAILSEC_BIND": "127.0.0.1"}
            | {"WEB_CONCURRENCY": "2", "MAILSEC_LOG_LEVEL": "WARNING"},
            stdout=self.web_log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        wait_for_port(self.web_port, self.web, timeout=60)

    def send(self, task: str, *args) -> None:
        """Send a task as beat would (the harness starts the clock with it)."""
        from celery import Celery

        from mailsec.queues import ROUTES

        app = Celery(broker=self.redis_url)
        app.send_task(task, args=args, queue=self.prefix + ROUTES[task])
        app.close()

    # --- the end -----------------------------------------------------------------------

    def stop(self) -> None:
        for beat in self.beats:
            beat.stop()
        for name, worker in self.workers.items():
            if worker.process is not None:
                self.stop_worker(name)
        if self.web is not None:
            self.web.terminate()
            self.web.wait(timeout=30)
        if self.forwarder is not None:
            self.forwarder.send_signal(signal.SIGINT)
            try:
                self.forwarder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.forwarder.kill()
        if self.knot is not None and self.knot.process is not None:
            os.kill(self.knot.process.pid, signal.SIGCONT)  # a pause must not outlive us
            self.knot.stop()
        self.stop_redis()
        if self.sql is not None:
            self.sql.close()
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
