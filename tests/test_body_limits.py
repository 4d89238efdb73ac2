"""The web app reads no request body larger than its largest upload, nor one that trickles (issue 23, item 6).

A 150 MB data URL through the queue used to be read whole before any handler ran, and a body sent one byte every
few seconds was waited for indefinitely. Both are refused from the raw socket, and the app keeps answering.
"""

from __future__ import annotations

import json

import httpx
import pytest
from helpers import raw_request, read_response, serve

from thinkedit import http_protocol
from thinkedit.config import Settings
from thinkedit.ui import MAX_BODY_BYTES


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setattr(http_protocol, "BODY_WINDOW_S", 1.0)  # the drip test waits for this, not 30 s
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", public=True))
    yield url.rstrip("/")
    demo.close()


def post_head(path: str, extra: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


def test_a_body_declared_larger_than_the_limit_is_refused_from_its_headers(app):
    sock = raw_request(app, post_head("/gradio_api/queue/join", f"Content-Length: {150 * 2**20}\r\n"))
    head, body = read_response(sock)
    assert head.startswith("http/1.1 413") and "the most this app reads" in body["detail"]
    assert httpx.get(f"{app}/config", timeout=10).status_code == 200, "the app answers others as before"


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(app):
    sock = raw_request(app, post_head("/gradio_api/call/edit", "Transfer-Encoding: chunked\r\n"))
    chunk = b"A" * 2**20
    sent = 0
    data_url = b'{"data": ["data:image/png;base64,'
    sock.sendall(b"%x\r\n%s\r\n" % (len(data_url), data_url))
    try:
        while sent <= MAX_BODY_BYTES + 2 * len(chunk):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: refused
    head, body = read_response(sock)
    assert head.startswith("http/1.1 413") and "the most this app reads" in body["detail"], head
    assert httpx.get(f"{app}/config", timeout=10).status_code == 200


def test_a_body_that_drips_is_refused_and_a_steady_one_is_read(app):
    sock = raw_request(app, post_head("/gradio_api/call/edit", "Content-Length: 1000\r\n"), b"{")
    head, body = read_response(sock)  # waits for the server's answer: it comes once the window passes
    assert head.startswith("http/1.1 408") and "too slowly" in body["detail"]
    steady = httpx.post(
        f"{app}/gradio_api/call/edit",
        content=json.dumps({"data": [None, "make it brighter"]}),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert steady.status_code == 200 and "event_id" in steady.json()
