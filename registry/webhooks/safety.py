"""Outbound safety: a webhook may not be pointed at this server's own network.

A registry that POSTs wherever a user says is a port scanner for its network (Harbor's
audit-forwarding endpoint check was one). Targets on loopback, link-local, private and
other non-global addresses are refused unless HUB_WEBHOOK_ALLOW_PRIVATE is set, and the
name is resolved again at every delivery (DNS may change after the hook was saved), and
the connection goes to exactly the address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeTarget(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


def _refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for name in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    if not address.is_global:
        return "non-global"
    return None


def parse(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("the URL must start with http:// or https://")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("the URL may not carry credentials; use the hook's secret")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTarget("the URL's port is not a number from 1 to 65535") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def resolve(url: str) -> Target:
    """The target to connect to; UnsafeTarget when it may not be reached."""
    scheme, host, port, path = parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"{host} does not resolve ({exc})") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeTarget(f"{host} does not resolve")
    if not settings.HUB_WEBHOOK_ALLOW_PRIVATE:
        # Every address the name has must be allowed: a name with one public and one
        # private address would otherwise reach the private one some of the time.
        for raw in addresses:
            why = _refusal(ipaddress.ip_address(raw.split("%", 1)[0]))
            if why is not None:
                raise UnsafeTarget(
                    f"{host} resolves to {raw}, a {why} address; webhooks may not reach "
                    "this network (HUB_WEBHOOK_ALLOW_PRIVATE allows it)"
                )
    return Target(scheme, host, port, path, addresses[0])
