"""Where a webhook may go: public addresses only, decided when it is sent.

A URL's host is resolved at send time and the connection is made to the address that was checked
(pinned), so a name that resolves to a public address at subscription and to 127.0.0.1 later is
still refused, and no second lookup can differ. Loopback, link-local, private, multicast,
reserved, unspecified and shared (CGNAT) ranges are refused unless the address lies in an allowed
network (``HEXPULSE_ALERTS_ALLOW_NETWORKS``, for tests and private deployments). Redirects are never
followed (delivery.py treats 3xx as a failure).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class RefusedTarget(ValueError):
    """A webhook URL that may not be called, with the reason."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked webhook target: connect to ``address``:``port``, send ``Host: host``."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a webhook URL, or RefusedTarget."""
    if len(url) > 2048:
        raise RefusedTarget("the webhook URL is longer than 2048 characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RefusedTarget("the webhook URL cannot be parsed") from exc
    if parts.scheme not in ("https", "http"):
        raise RefusedTarget("the webhook URL must use https (or http)")
    if not parts.hostname or parts.username or parts.password:
        raise RefusedTarget("the webhook URL needs a host and no user or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise RefusedTarget("the webhook URL has an invalid port") from exc
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def refused_reason(address: Address, allowed: tuple[Network, ...]) -> str | None:
    """Why ``address`` may not be called (None if it may)."""
    if any(address in net for net in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refused_reason(address.ipv4_mapped, allowed)
    checks = (("loopback", address.is_loopback), ("link-local", address.is_link_local),
              ("multicast", address.is_multicast), ("unspecified", address.is_unspecified),
              ("reserved", address.is_reserved),
              ("shared (CGNAT)", isinstance(address, ipaddress.IPv4Address) and address in _CGNAT),
              ("private", address.is_private or not address.is_global))  # fmt: skip
    return next((name for name, hit in checks if hit), None)


def resolve(url: str, allowed: tuple[Network, ...]) -> Target:
    """Resolve the URL's host now and pin the first address; refuse if any address is refused
    (a name with one private address among public ones could be steered to it)."""
    scheme, host, port, path = check_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RefusedTarget(f"the webhook host does not resolve ({exc.strerror})") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise RefusedTarget("the webhook host has no address")
    for address in addresses:
        reason = refused_reason(address, allowed)
        if reason:
            raise RefusedTarget(f"the webhook host resolves to a {reason} address; refused")
    return Target(scheme, host, port, path, str(addresses[0]))


def parse_networks(items: tuple[str, ...]) -> tuple[Network, ...]:
    """The allowed networks of the setting (CIDR strings)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)
