"""Webhook targets: private, loopback, link-local and other non-public addresses are refused,
also behind a DNS name, unless an allowed network covers them; the URL's shape is checked."""

from __future__ import annotations

import ipaddress

import pytest

from alerts.ssrf import RefusedTarget, check_url, parse_networks, refused_reason, resolve


@pytest.mark.parametrize(
    ("addr", "reason"),
    [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
        ("172.16.5.5", "private"), ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"),  # noqa: S104
        ("240.0.0.1", "reserved"), ("100.64.1.1", "shared (CGNAT)"), ("::ffff:127.0.0.1", "loopback"),
        ("fc00::1", "private"),
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(addr: str, reason: str) -> None:
    assert refused_reason(ipaddress.ip_address(addr), ()) == reason


def test_public_addresses_pass_and_allowed_networks_open_private_ones() -> None:
    assert refused_reason(ipaddress.ip_address("93.184.216.34"), ()) is None
    assert refused_reason(ipaddress.ip_address("127.0.0.1"), parse_networks(("127.0.0.0/8",))) is None


def test_a_dns_name_is_judged_by_the_address_it_resolves_to() -> None:
    with pytest.raises(RefusedTarget, match="loopback"):
        resolve("http://localhost:9/hook", ())
    target = resolve("http://localhost:9/hook?a=1", parse_networks(("127.0.0.0/8", "::1/128")))
    assert target.address in ("127.0.0.1", "::1")
    assert target.host == "localhost" and target.path == "/hook?a=1"


@pytest.mark.parametrize(
    ("url", "msg"),
    [("ftp://example.org/", "https"), ("https://user:pw@example.org/", "no user"), ("https:///x", "host"),
     ("http://example.org:99999/", "port")],
)  # fmt: skip
def test_bad_urls_are_refused(url: str, msg: str) -> None:
    with pytest.raises(RefusedTarget, match=msg):
        check_url(url)
