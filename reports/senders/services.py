"""Which sender a source address belongs to, and what service that is.

A sender is the service its reverse DNS name belongs to (by the name's organisational base
domain, looked up in reports/data), else that base domain, else the address block (/24 for
IPv4, /48 for IPv6). Only a forward-confirmed name counts: anybody may put "google.com" in
the PTR record of an address they hold, but only Google can make that name resolve back to it.
An unconfirmed name is shown, and the address grouped by its block.
"""

from __future__ import annotations

import csv
import ipaddress
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).resolve().parent.parent / "data"
FILES = ("services.csv", "forwarders.csv")  # later files win
# Service types that relay mail written elsewhere: their DKIM-signed mail passes, their SPF fails.
FORWARDING_TYPES = {"Forwarder", "Mailing list"}
IPV4_BLOCK, IPV6_BLOCK = 24, 48


@dataclass(frozen=True)
class Service:
    name: str
    type: str

    @property
    def forwards(self) -> bool:
        return self.type in FORWARDING_TYPES


@cache
def services() -> dict[str, Service]:
    """Base domain -> Service, from the data files."""
    found: dict[str, Service] = {}
    for name in FILES:
        with open(DATA / name, newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                base = row["base_reverse_dns"].strip().lower()
                if base:
                    found[base] = Service(row["name"].strip(), row["type"].strip())
    return found


@cache
def bases_of(service_name: str) -> frozenset[str]:
    """The base domains of a service (the reverse of services())."""
    return frozenset(b for b, s in services().items() if s.name == service_name)


def service_for(base_domain: str) -> Service | None:
    return services().get(base_domain.lower()) if base_domain else None


# A dotted quad as the database gives IPv4 addresses: four decimal numbers up to 255, no
# leading zeros (ASCII digits only: \d would take any script's).
_QUAD = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")  # fmt: skip


def block_of(ip: str) -> str:
    """The address block a sender without a confirmed name is shown as: 192.0.2.0/24."""
    if _QUAD.fullmatch(ip):
        # A page may hold thousands: this is a twentieth of ipaddress's time.
        return f"{ip[: ip.rindex('.')]}.0/{IPV4_BLOCK}"
    address = ipaddress.ip_address(ip)
    prefix = IPV4_BLOCK if address.version == 4 else IPV6_BLOCK
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class SenderId(NamedTuple):
    """Who a source address sends as: `key` is what marks and events name. (A tuple: a page
    makes one per address, thousands.)"""

    key: str
    label: str
    service: Service | None = None
    base_domain: str = ""
    block: str = ""


def sender_of(ip: str, base_domain: str = "", confirmed: bool = False) -> SenderId:
    if base_domain and confirmed:
        service = service_for(base_domain)
        if service is not None:
            return SenderId(f"service:{service.name}", service.name, service, base_domain)
        return SenderId(f"domain:{base_domain}", base_domain, None, base_domain)
    block = block_of(ip)
    return SenderId(f"net:{block}", block, block=block)
