"""Outgoing webhook connections: every special-purpose range refused (IPv4 embedded in IPv6 included),
and the connection goes to the address that was checked (no second resolution to rebind)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from labelhub.accounts.models import Role
from labelhub.core import netsafety
from tests.labelhub.webhooks.test_webhooks import Receiver

REFUSED = [
    "127.0.0.1",
    "10.0.0.1",
    "100.64.0.1",  # shared address space (carrier NAT)
    "169.254.169.254",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "224.0.0.1",
    "240.0.0.1",
    "0.0.0.0",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]


@pytest.mark.parametrize("address", REFUSED)
def test_special_purpose_addresses_are_refused(address):
    assert netsafety.address_refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::1"])
def test_public_addresses_are_allowed(address):
    assert netsafety.address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::127.0.0.1]", "[::ffff:a00:1]"])
def test_webhook_urls_with_ipv4_inside_ipv6_are_refused(org_a, settings, host):
    settings.LABELHUB_WEBHOOK_ALLOW_PRIVATE = False
    response = org_a.clients[Role.MANAGER].post(
        "/api/v1/webhooks/",
        {"organization": org_a.organization.id, "url": f"http://{host}/hook"},
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "url"


def _resolver(monkeypatch, name: str, answers: list[str]) -> list[str]:
    """Answers for `name`, one per lookup (a rebinding DNS server); other names resolve as usual."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        ip = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(monkeypatch):
    with Receiver([204]) as receiver:
        port = receiver.server.server_address[1]
        # first answer: the receiver; any later lookup would send the request to a dead address
        asked = _resolver(monkeypatch, "hooks.example.test", ["127.0.0.1", "10.255.255.1"])
        status = netsafety.http_post(
            f"http://hooks.example.test:{port}/hook",
            body=b"{}",
            headers={"Content-Type": "application/json"},
            timeout=5,
            allow_private=True,
        )
    assert status == 204
    assert asked == ["hooks.example.test"]  # resolved once
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{port}"


def test_a_name_that_resolves_to_a_private_address_is_not_contacted(monkeypatch):
    with Receiver([200]) as receiver:
        port = receiver.server.server_address[1]
        _resolver(monkeypatch, "rebind.example.test", ["127.0.0.1"])
        with pytest.raises(netsafety.AddressRefused):
            netsafety.http_post(
                f"http://rebind.example.test:{port}/", body=b"{}", headers={}, timeout=5, allow_private=False
            )
    assert receiver.requests == []
