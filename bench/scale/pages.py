"""Where a page's time goes: each path rendered in this process (Django's test client, signed
in as the harness's owner) against the harness's database, with its queries counted and
timed. Run with the cluster's environment (`Cluster.profile_pages`); prints JSON.

    python -m bench.scale.pages /domains/ /domains/1/ ...
"""

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def profile(path: str, client: Client, rounds: int = 3) -> dict:
    best = None
    for _ in range(rounds):  # the best of a few: the first pays for imports and caches
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path, HTTP_HOST="127.0.0.1")
            elapsed = time.perf_counter() - started
        if best is None or elapsed < best["ms"] / 1000:
            timed = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))
            best = {
                "status": response.status_code,
                "ms": round(elapsed * 1000, 1),
                "queries": len(queries),
                "query_ms": round(sum(float(q["time"]) for q in timed) * 1000, 1),
                "slowest": [
                    {"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"][:300]}
                    for q in timed[:4]
                ],
            }
    return best


def main(paths: list[str]) -> None:
    client = Client()
    client.force_login(get_user_model().objects.get(username="scale-owner"))
    print(json.dumps({path: profile(path, client) for path in paths}))


if __name__ == "__main__":
    main(sys.argv[1:])
