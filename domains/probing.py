"""The probe results a run judges: probed now (shared through the database within each
domain's probe interval), or only the stored ones (the DNS checks between two probe runs).

The Prober (domains/probes/runner.py) asks its cache from worker threads; the database is read
before and written after, in the caller's thread, so the cache it sees is plain memory."""

import dataclasses
from datetime import UTC, datetime, timedelta

from domains.engine import ProbeSource
from domains.probes.results import (
    Certificate,
    ProbeResult,
    Reach,
    Service,
    Target,
    TlsInfo,
    TlsMode,
)


def _known(cls, data: dict) -> dict:
    """The fields of `cls` in `data` (a result stored by an older or newer version)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def result_from_dict(data: dict) -> ProbeResult:
    target = data["target"]
    tls = data.get("tls")
    if tls is not None:
        cert = tls.get("certificate")
        tls = TlsInfo(
            **{
                **_known(TlsInfo, tls),
                "certificate": Certificate(**_known(Certificate, cert)) if cert else None,
            }
        )
    return ProbeResult(
        **{
            **_known(ProbeResult, data),
            "target": Target(
                target["host"],
                target["address"],
                int(target["port"]),
                Service(target["service"]),
                TlsMode(target["tls_mode"]),
            ),
            "reach": Reach(data["reach"]),
            "tls": tls,
        }
    )


def result_to_dict(result: ProbeResult) -> dict:
    data = result.as_dict()
    for name in ("service", "tls_mode"):
        data["target"][name] = str(data["target"][name])
    data["reach"] = str(data["reach"])
    return data


class _MemoryCache:
    """What the Prober asks: the fresh stored results; collects the new ones."""

    def __init__(self, fresh: dict):
        self.fresh, self.new = fresh, []

    def get(self, key):
        return self.fresh.get(key)

    def put(self, result: ProbeResult) -> None:
        self.new.append(result)


class LiveProbes(ProbeSource):
    """Probe what has no stored result younger than `max_age`, and store what was probed."""

    def __init__(self, max_age: timedelta, **prober_options):
        super().__init__()
        self.max_age, self.prober_options = max_age, prober_options
        self.probed = 0

    def probe(self, targets: list, session) -> dict:
        from domains.models import ServerProbe
        from domains.probes.runner import Prober

        if not targets:
            return {}
        since = datetime.now(UTC) - self.max_age
        cache = _MemoryCache(ServerProbe.objects.latest_results([t.key for t in targets], since))
        with Prober(cache=cache, **self.prober_options) as prober:
            found = prober.probe_many(targets, session)
            self.probed += prober.probed
        ServerProbe.objects.store(cache.new)
        return found


class StoredProbes(ProbeSource):
    """Only the stored results, whatever their age (each says when it was probed)."""

    stored = True

    def probe(self, targets: list, session) -> dict:
        from domains.models import ServerProbe

        return ServerProbe.objects.latest_results([t.key for t in targets])
