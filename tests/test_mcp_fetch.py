"""The MCP tool's image URL is fetched within bounds (issue 23, item 3): at most an upload's size, within a deadline
that a trickle does not extend, public addresses only, every redirect checked again."""

from __future__ import annotations

import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import pytest
from gradio import processing_utils
from PIL import Image

from thinkedit.errors import BadInput
from thinkedit.ui import received
from thinkedit.ui.agent import tool_image


def png() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (16, 12), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


class Routes(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/photo.png":
            body = png()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/endless":
            self.send_response(200)  # no length: it just keeps coming
            self.end_headers()
            chunk = b"\0" * 2**20
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif self.path == "/to-private":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.server.server_port}/photo.png")
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A server on 127.0.0.1, let through the public-address check for these tests (as the Hub's hosts are)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Routes)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(processing_utils, "PUBLIC_HOSTNAME_WHITELIST", ["127.0.0.1"])
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_an_image_url_is_fetched(server):
    assert tool_image(f"{server}/photo.png", public=False) == png()


def test_an_endless_answer_is_cut_at_an_uploads_size_and_memory_stays_bounded(server):
    tracemalloc.start()
    try:
        with pytest.raises(BadInput, match="larger than 50 MB"):
            tool_image(f"{server}/endless", public=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * received.MAX_UPLOAD_BYTES  # not the gigabytes the server would go on sending


def test_a_drip_ends_at_the_deadline(server):
    with pytest.raises(BadInput, match="did not arrive within 1 s"):
        tool_image(f"{server}/drip", public=False, deadline=1.0)


def test_a_redirect_to_a_private_address_is_refused(server):
    with pytest.raises(BadInput, match="could not be downloaded"):
        tool_image(f"{server}/to-private", public=False)
    with pytest.raises(BadInput, match="does not fetch images"):
        tool_image(f"{server}/photo.png", public=True)
