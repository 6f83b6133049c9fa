"""A signed-in user reading pages while the checks and imports run: a loop of GETs against the
web process (gunicorn), timing each from the request's first byte to the answer's last."""

import http.client
import statistics
import threading
import time


class PageLoad:
    def __init__(self, port: int, cookie: str, paths: list[str], clients: int = 2):
        self.port, self.cookie, self.paths = port, cookie, paths
        self.clients = clients
        self.timings: list[float] = []
        self.by_path: dict[str, list[float]] = {path: [] for path in paths}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path, headers={"Cookie": self.cookie})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _loop(self, offset: int) -> None:
        n = offset
        while not self._stop.is_set():
            path = self.paths[n % len(self.paths)]
            n += 1
            started = time.perf_counter()
            try:
                status, _body = self.get(path)
            except OSError as error:
                self.failures.append(f"{path}: {error}")
                continue
            elapsed = time.perf_counter() - started
            if status != 200:
                self.failures.append(f"{path}: HTTP {status}")
            else:
                self.timings.append(elapsed)
                self.by_path[path].append(elapsed)
            time.sleep(0.05)  # a reader, not a flood

    def start(self) -> None:
        for i in range(self.clients):
            thread = threading.Thread(target=self._loop, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> dict:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)
        timings = sorted(self.timings)
        if not timings:
            return {"pages": 0, "failures": len(self.failures)}
        return {
            "pages": len(timings),
            "failures": len(self.failures),
            "failure_examples": self.failures[:5],
            "median_ms": round(statistics.median(timings) * 1000, 1),
            "p95_ms": _p95(timings),
            "max_ms": round(timings[-1] * 1000, 1),
            "p95_ms_by_page": {path: _p95(t) for path, t in self.by_path.items() if t},
        }


def _p95(timings: list[float]) -> float:
    timings = sorted(timings)
    return round(timings[min(len(timings) - 1, int(len(timings) * 0.95))] * 1000, 1)
