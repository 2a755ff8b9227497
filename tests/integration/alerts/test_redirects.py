"""A webhook endpoint that redirects is not followed (a 3xx is a failed attempt, whatever the
Location says), and a URL naming a loopback address or a name resolving to one is refused at send
time unless an allowed network covers it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.delivery import post
from alerts.ssrf import RefusedTarget, parse_networks, resolve

hits: list[str] = []


class _Redirect(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        hits.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(307)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture()
def redirector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_redirect_is_a_failure_and_is_not_followed(redirector: str) -> None:
    hits.clear()
    target = resolve(redirector, parse_networks(("127.0.0.0/8", "::1/128")))
    outcome = post(target, b"{}", {"webhook-id": "evt_x"}, 5.0)
    assert not outcome.ok and outcome.status == 307 and outcome.error == "redirect not followed"
    assert hits == ["/hook"]  # one request, to the subscribed URL only


def test_loopback_by_name_or_address_is_refused_without_the_allow_list(redirector: str) -> None:
    with pytest.raises(RefusedTarget, match="loopback"):
        resolve(redirector, ())
    with pytest.raises(RefusedTarget, match="loopback"):
        resolve(redirector.replace("localhost", "127.0.0.1"), ())
    with pytest.raises(RefusedTarget, match="link-local"):
        resolve("http://169.254.169.254/latest/meta-data/", ())
