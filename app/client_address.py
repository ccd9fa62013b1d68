"""Who is asking, by address: the peer, or -- when the peer is a trusted proxy -- the client it forwards for.

`X-Forwarded-For` is a list each proxy appends the address it was connected from to, so only its
right end can be believed: everything left of the entry our own proxy wrote was written by the
client or by proxies we know nothing about. Walking from the right, every entry that is itself a
trusted proxy is a hop inside our own infrastructure; the first that is not is the client. A
peer that is not trusted (or TRUSTED_PROXIES left empty) is the client, whatever it sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.requests import Request

Network = IPv4Network | IPv6Network

# What a request without a peer (an ASGI server that does not say) is counted as.
UNKNOWN = "unknown"


def client_address(request: Request, trusted_proxies: tuple[Network, ...]) -> str:
    """The address the request comes from, as `resolve` finds it from the request's peer and headers."""
    peer = request.client.host if request.client else None
    return resolve(peer, request.headers.getlist("x-forwarded-for"), trusted_proxies)


def resolve(peer: str | None, forwarded_for: Iterable[str], trusted_proxies: tuple[Network, ...]) -> str:
    """The client's address: the right-most entry of X-Forwarded-For that is not a trusted proxy,
    when the peer is one; otherwise the peer itself. Addresses come back in their canonical form."""
    if peer is None:
        return UNKNOWN
    peer_address = _parse(peer)
    if peer_address is None or not _is_trusted(peer_address, trusted_proxies):
        return _canonical(peer, peer_address)
    # Several X-Forwarded-For headers are one list, in the order they came (RFC 9110, 5.3).
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None or not _is_trusted(address, trusted_proxies):
            # Written by a proxy of ours, so not forged -- even when it is not an address at all.
            return _canonical(hop, address)
    # Nothing but our own proxies (or no header at all): the left-most hop is where it started.
    return _canonical(hops[0], _parse(hops[0])) if hops else _canonical(peer, peer_address)


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text)
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the same client as over IPv4.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPv4Address | IPv6Address, trusted_proxies: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted_proxies)  # False across IPv4 and IPv6


def _canonical(text: str, address: IPv4Address | IPv6Address | None) -> str:
    # Bounded: the text is counted as a rate-limit key.
    return str(address) if address is not None else text[:100].lower()
