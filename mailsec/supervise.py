"""`make run`: the Procfile's processes (web app, worker, scheduler) under supervisord, in the
foreground. Each is restarted when it dies, on its own: a worker killed by the OOM killer no
longer takes the web app down with it (honcho, used before, stopped everything when one
process ended). One Ctrl-C stops them all.

    python -m mailsec.supervise [--procfile mailsec/Procfile] [--var var]

The supervisord configuration is generated from the Procfile into the var directory on every
start. In production run the same commands under systemd instead (README: "Running it").
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
# How long a stop waits for a process before killing it: gunicorn finishes its requests, the
# worker the tasks it runs (their messages stay in the queue, acknowledged late, until then).
STOP_WAIT = {"web": 8, "worker": 10, "beat": 5}
# Started last and stopped first: the web app is the first up and the last down.
PRIORITY = {"web": 100, "worker": 200, "beat": 300}


def read_procfile(path: Path) -> dict[str, str]:
    processes = {}
    for line in path.read_text().splitlines():
        if match := PROCFILE_LINE.match(line.strip()):
            processes[match[1]] = match[2]
    return processes


def config(processes: dict[str, str], var: Path, root: Path = ROOT) -> str:
    """supervisord's configuration: every process in the foreground's output, restarted when
    it exits (after a pause that grows when it keeps failing to start)."""
    sections = [
        "[supervisord]",
        "nodaemon=true",
        "logfile=/dev/null",  # supervisord's own lines go to the terminal (nodaemon)
        "logfile_maxbytes=0",
        f"pidfile={var / 'supervisord.pid'}",
        "loglevel=info",
        "",
    ]
    if os.geteuid() == 0:
        sections.insert(1, "user=root")  # said, so supervisord does not warn about it
    sections += [
        # One group, so a stop reaches all of them at once rather than one after the other.
        "[group:mailsec]",
        f"programs={','.join(processes)}",
        "",
    ]
    for name, command in processes.items():
        sections += [
            f"[program:{name}]",
            # The Procfile's lines are shell: ${PORT}, ${WEB_CONCURRENCY:-3}.
            f"command=/bin/sh -c {_quoted('exec ' + command)}",
            f"directory={root}",
            f"priority={PRIORITY.get(name, 500)}",
            "autorestart=true",
            "startsecs=3",
            "startretries=100",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT.get(name, 10)}",
            # The stop signal goes to the process, which stops its own children (a pool
            # process sent TERM by somebody else dies saying so, in red); a process still
            # there after stopwaitsecs is killed with all of its children.
            "stopasgroup=false",
            "killasgroup=true",
            "redirect_stderr=true",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "",
        ]
    return "\n".join(sections)


def _quoted(command: str) -> str:
    # supervisord splits `command` like a shell (shlex), and expands %(...)s.
    escaped = command.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procfile", type=Path, default=ROOT / "mailsec" / "Procfile")
    parser.add_argument("--var", type=Path, default=Path(os.environ.get("MAILSEC_VAR_DIR", "var")))
    args = parser.parse_args(argv)
    var = args.var.resolve()
    var.mkdir(parents=True, exist_ok=True)
    path = var / "supervisord.conf"
    path.write_text(config(read_procfile(args.procfile), var))
    supervisord = Path(sys.executable).with_name("supervisord")
    command = [str(supervisord), "--nodaemon", "--configuration", str(path)]
    os.execv(supervisord, command)  # noqa: S606  (supervisord takes over this process)


if __name__ == "__main__":
    main()
