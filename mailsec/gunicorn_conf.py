"""gunicorn's settings for mailsec: `make run` (mailsec/Procfile) and the systemd unit in the
README both start `gunicorn --config python:mailsec.gunicorn_conf mailsec.wsgi`.

Threads, not sync workers: a sync worker serves one connection at a time from its first byte to
its last, so three clients sending their headers a byte a minute (slowloris) held all three
workers and the site stopped answering. gthread workers wait for idle connections in a poller
and serve requests from a bounded pool of threads: a slow client holds one thread, not a
process. That is a bound, not a cure: as many slow clients as a process has threads hold that
process's requests (gunicorn has no timeout for reading a request's headers). In front of the
public internet put a buffering proxy as well (nginx, Caddy): it reads whole requests before
passing them on, so no number of slow clients reaches gunicorn.
"""

import os

bind = f"{os.environ.get('MAILSEC_BIND', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("MAILSEC_WEB_THREADS", "8"))
# Connections one worker holds open (kept alive, or waiting for their request) besides those
# its threads serve.
worker_connections = 200
keepalive = 5
# A request that runs this long is killed (and logged); uploads are parsed by the worker, so
# no page needs more than a few seconds.
timeout = 30
graceful_timeout = 5  # a stop (Ctrl-C, systemctl stop) waits this long for requests in flight
forwarded_allow_ips = os.environ.get("MAILSEC_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
control_socket_disable = True
