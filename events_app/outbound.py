"""Outbound webhook calls: where k8sdm may connect, and the signed POST itself.

SSRF rules (checked when an endpoint is registered or changed, and again before every attempt,
so a DNS answer that changes later, "rebinding", is caught too):
- the URL is http(s), has a host, no user:password, at most 2048 characters;
- every address the host resolves to must be allowed: a global unicast address outside
  K8SDM_WEBHOOK_DENIED_NETWORKS, or an address inside K8SDM_WEBHOOK_ALLOWED_NETWORKS. Loopback,
  link-local (cloud metadata at 169.254.169.254 included), private, shared (100.64/10), multicast,
  reserved and unspecified addresses are refused otherwise; IPv4-mapped IPv6 is judged as IPv4;
- the connection goes to the address that was checked (never a second lookup), with the URL's
  host in the Host header and for TLS in SNI and certificate verification;
- redirects are not followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2048
USER_AGENT = "k8sdm-webhooks/1"


class Refused(ValueError):
    """The URL or an address it resolves to is not allowed."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP to connect to


def _networks(values) -> list:
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _networks(settings.K8SDM_WEBHOOK_ALLOWED_NETWORKS) if net.version == ip.version):
        return True
    if any(ip in net for net in _networks(settings.K8SDM_WEBHOOK_DENIED_NETWORKS) if net.version == ip.version):
        return False
    return ip.is_global and not ip.is_multicast


def parse_url(url: str) -> tuple[str, str, int, str]:
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("must be an http:// or https:// URL")
    if not parts.hostname:
        raise Refused("must name a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not carry a user name or password")
    if any(ch.isspace() for ch in url):
        raise Refused("must not contain spaces")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str) -> Target:
    """Check the URL and every address its host resolves to; the first one is used to connect."""
    scheme, host, port, path = parse_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"host {host!r} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Refused(f"host {host!r} does not resolve")
    for address in addresses:
        if not address_allowed(address):
            raise Refused(f"host {host!r} resolves to {address}, a loopback, link-local, private or otherwise "
                          "internal address, which webhooks may not reach")
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-K8sdm-Signature value: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, address: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, address: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int | None
    duration_ms: float
    error: str = ""


def post(target: Target, *, body: bytes, headers: dict, timeout: float) -> Attempt:
    """One POST to the checked address; never follows a redirect. ok: a 2xx answer."""
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target.address, target.host, target.port, timeout=timeout,
                                      context=ssl.create_default_context())
    else:
        conn = _PinnedHTTPConnection(target.address, target.host, target.port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request("POST", target.path, body=body, headers={"User-Agent": USER_AGENT, **headers})
        response = conn.getresponse()
        response.read(64 * 1024)  # a little of the answer, so the peer sees a clean close
        elapsed = (time.perf_counter() - started) * 1000
        if 200 <= response.status < 300:
            return Attempt(ok=True, status=response.status, duration_ms=elapsed)
        note = " (redirects are not followed)" if 300 <= response.status < 400 else ""
        return Attempt(ok=False, status=response.status, duration_ms=elapsed,
                       error=f"HTTP {response.status}{note}")
    except (OSError, http.client.HTTPException) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        kind = "timed out" if isinstance(exc, (socket.timeout, TimeoutError)) else type(exc).__name__
        return Attempt(ok=False, status=None, duration_ms=elapsed, error=f"{kind}: {exc}"[:500])
    finally:
        conn.close()
