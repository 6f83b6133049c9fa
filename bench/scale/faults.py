"""The faults the harness injects, each as it happens in production:

- `kill_worker`: a check worker's machine dies (SIGKILL to the worker and its pool): what it
  held stays unacknowledged in Redis; the reaper queues the domains again after its patience
  (30 min) and Redis gives the messages back after its visibility timeout (2 h), which the
  harness then lets happen at once (`reap_late`, `redeliver`);
- `kill_pool_child`: the OOM killer takes one pool process: the worker gives its tasks back
  and exits (mailsec/celery.py), its supervisor starts it again;
- `restart_redis`: the harness's own redis-server is shut down and started again on its port
  (append-only file: the queues survive);
- `drop_database_connections`: PostgreSQL drops every connection to the harness's database
  (pg_terminate_backend on each backend of it, as a server restart does; the machine's
  server itself, shared with others, is not restarted);
- `pause_dns`: knot stops answering for 30 s (SIGSTOP, then SIGCONT).
"""

import contextlib
import json
import os
import signal
import time

from bench.scale.cluster import Cluster


def kill_worker(cluster: Cluster, name: str) -> str:
    worker = cluster.workers[name]
    children = worker.pool_children()
    os.kill(worker.process.pid, signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):  # it died with its parent
            os.kill(pid, signal.SIGKILL)
    worker.process.wait()
    pid = worker.process.pid
    return f"SIGKILL worker {name} (pid {pid}) and its {len(children)} pool processes"


def kill_pool_child(cluster: Cluster, name: str) -> str:
    worker = cluster.workers[name]
    children = worker.pool_children()
    if not children:
        return f"worker {name} had no pool process"
    os.kill(children[0], signal.SIGKILL)
    return f"SIGKILL pool process {children[0]} of worker {name}"


def restart_redis(cluster: Cluster) -> str:
    started = time.monotonic()
    cluster.stop_redis()
    cluster.start_redis()
    return f"Redis shut down and started again ({time.monotonic() - started:.1f} s down)"


def drop_database_connections(cluster: Cluster) -> str:
    dropped = cluster.sql.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    return f"pg_terminate_backend on {dropped} connections to {cluster.database}"


def pause_dns(cluster: Cluster, seconds: float = 30) -> str:
    os.kill(cluster.knot.process.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(cluster.knot.process.pid, signal.SIGCONT)
    return f"knot paused {seconds:g} s (SIGSTOP, SIGCONT)"


def reap_late(cluster: Cluster) -> dict:
    """What the reaper does by itself half an hour on, made to happen now, once the queues
    have drained: it runs as if two hours had passed, and a claimed domain without a run is
    due again. The reaper makes it due at the time it is told is now, two hours ahead here,
    which the dispatcher would wait for; in production that time is now, so those domains are
    made due now. Returns what it reaped."""
    reaped = cluster.manage(
        "shell",
        "-c",
        "import json; from django.utils import timezone; from mailsec import reaper;"
        " from domains.models import Domain; later = timezone.now() + reaper.LATE_ENOUGH;"
        " found = reaper.reap(later);"
        " Domain.objects.filter(next_check_at=later).update(next_check_at=timezone.now());"
        " print(json.dumps(found))",
    )
    return json.loads(reaped.strip().splitlines()[-1])


def redeliver(cluster: Cluster) -> int:
    """What Redis does two hours on (its visibility timeout), made to happen now: every message
    still unacknowledged (held by a worker that was killed) goes back to its queue. After
    reap_late() and the dispatch it leads to, as in production. Returns how many."""
    client = cluster.redis()
    restored = 0
    for tag, raw in client.hgetall("unacked").items():
        message, _exchange, routing_key = json.loads(raw)
        client.lpush(routing_key, json.dumps(message))
        client.hdel("unacked", tag)
        client.zrem("unacked_index", tag)
        restored += 1
    return restored
