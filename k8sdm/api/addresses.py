"""Where a call comes from: the peer (REMOTE_ADDR) and, behind trusted proxies, the client.

K8SDM_TRUSTED_PROXIES (CIDRs) are the gateways/proxies whose word is taken: the identity header
(authentication mode `header`) and X-Forwarded-For. The client address is the right-most address
of X-Forwarded-For that is not a trusted proxy (the left part of that header is whatever the
client wrote, so it is never believed), or the peer itself when the peer is not trusted.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _parse(address: str):
    try:
        return ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None


def is_trusted_proxy(address: str) -> bool:
    ip = _parse(address)
    if ip is None:
        return False
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    return any(ip in net for net in _networks(tuple(settings.K8SDM_TRUSTED_PROXIES)))


def peer_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or ""


def peer_is_trusted(request) -> bool:
    return is_trusted_proxy(peer_address(request))


def client_address(request) -> str:
    peer = peer_address(request)
    if not is_trusted_proxy(peer):
        return peer
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if _parse(hop) is None:
            return peer  # garbage in the chain: count it against the proxy that passed it
        if not is_trusted_proxy(hop):
            return hop
    return hops[0] if hops else peer
