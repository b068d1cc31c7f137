"""What counts as this machine's loopback in a Host header (the local servers answer nothing else)."""

from __future__ import annotations

import re

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# A Host value (RFC 9110 7.2): a name or a bracketed IPv6 address, then an optional numeric port.
_HOST = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[^:\[\]@/]+))(?::[0-9]{1,5})?")


def is_loopback_host(host: str) -> bool:
    """True for a Host value naming this machine's loopback, with or without a port (nothing else): a page
    on another site that rebinds its DNS name to 127.0.0.1 still sends its own name."""
    match = _HOST.fullmatch(host.strip().lower())
    return match is not None and (match["ipv6"] or match["name"]) in LOOPBACK_HOSTS
