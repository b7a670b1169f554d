"""Outgoing requests to addresses users choose (webhooks), safe against SSRF and DNS rebinding.

A host is resolved once; every address it resolves to is checked, and the connection goes to the
checked address (the name still travels in the Host header and in TLS SNI, and the certificate is
verified against the name). Refused: every special-purpose range (loopback, private, link-local,
shared, documentation, benchmarking, multicast, reserved, unspecified) and any IPv4 address embedded
in IPv6 (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and 64:ff9b:1::/48,
6to4 2002::/16, Teredo 2001::/32) whose IPv4 part is itself refused.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address outgoing requests may not reach."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if address.ipv4_mapped:
        found.append(address.ipv4_mapped)
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        found.extend(address.teredo)
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 or any(address in net for net in _NAT64):  # ::a.b.c.d, NAT64
        found.append(low32)
    return found


def address_refusal(address: IPAddress) -> str | None:
    """Why `address` may not be reached (a short phrase), or None when it is a public address."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates += _embedded_ipv4(address)
    for candidate in candidates:
        if candidate.is_multicast:
            return f"{address} (multicast)"
        if not candidate.is_global or candidate.is_reserved or candidate.is_unspecified:
            return (
                f"{address} (not a public address)"
                if candidate == address
                else (f"{address} (embeds {candidate}, not a public address)")
            )
    return None


def host_resolve(host: str, port: int, *, allow_private: bool) -> IPAddress:
    """The one address to connect to for `host`: a literal, or the first address the name resolves to.
    Unless `allow_private`, AddressRefused when any resolved address is refused (a name with one
    private address among public ones is refused); OSError when the name does not resolve."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise OSError(f"{host} does not resolve") from None
    if not allow_private:
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise AddressRefused(reason)
    return addresses[0]


def http_post(url: str, *, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool) -> int:
    """POST `body` to `url` once, connecting to the address checked by `host_resolve`; redirects are
    not followed. Returns the HTTP status; AddressRefused, or OSError/HTTPException on network errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pinned = str(host_resolve(parts.hostname, port, allow_private=allow_private))
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)

    def connect_pinned(address, *args, **kwargs):  # http.client's hook: the name stays for Host and SNI
        return socket.create_connection((pinned, address[1]), *args, **kwargs)

    conn._create_connection = connect_pinned  # type: ignore[attr-defined]  # noqa: SLF001 - http.client's connection hook
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        conn.close()


class ResponseTooLarge(Exception):
    """The answer's body is longer than the caller accepts."""


def http_request(
    method: str,
    url: str,
    *,
    body: bytes | None,
    headers: dict[str, str],
    timeout: float,
    allow_private: bool,
    max_bytes: int,
) -> tuple[int, bytes]:
    """One request to `url` on the address checked by `host_resolve` (redirects not followed), with a
    deadline: `timeout` seconds for the whole exchange (each socket operation also times out at it, and
    the body is read in chunks against the deadline, so a service dripping bytes cannot hold the caller).
    Returns (status, body). Raises AddressRefused, ResponseTooLarge (a Content-Length or a body over
    `max_bytes`, found before reading past it), TimeoutError, OSError/HTTPException on network errors."""
    import time

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    deadline = time.monotonic() + timeout
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pinned = str(host_resolve(parts.hostname, port, allow_private=allow_private))
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)

    def connect_pinned(address, *args, **kwargs):
        return socket.create_connection((pinned, address[1]), *args, **kwargs)

    conn._create_connection = connect_pinned  # type: ignore[attr-defined]  # noqa: SLF001 - see http_post
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(f"the answer declares {declared} bytes; at most {max_bytes} are read")
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete answer within {timeout:g} s")
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = response.read1(64 * 1024) if hasattr(response, "read1") else response.read(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"the answer is longer than {max_bytes} bytes")
            chunks.append(chunk)
        return response.status, b"".join(chunks)
    except TimeoutError as exc:
        raise TimeoutError(f"no complete answer within {timeout:g} s") from exc
    finally:
        conn.close()
