"""The one rule for files a request names: only a file Gradio itself received for this app is opened.

Endpoints that take their input raw (`preprocess=False`, so that a broken or huge upload gets our sentence rather
than a decoder's) skip Gradio's own check that a file payload names an upload. Every such value goes through
`received_file`: the path, once links are resolved, must lie in Gradio's upload folder (which also holds its cache
of the files it sent). Anything else — a server path, a link out of the folder, a file that does not exist — gets
the same sentence, so a caller learns nothing about the server's files.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import safehttpx
from gradio import processing_utils
from gradio.utils import get_upload_folder

from ..errors import BadInput

MAX_UPLOAD_BYTES = 50 * 2**20  # an upload (or a data URL's decoded bytes) may be at most this large
NOT_RECEIVED = (
    "The {what} must be a file uploaded to this page (or sent as a data URL); no other file on the server is opened."
)


def received_file(path: Any, what: str = "image") -> Path:
    """`path` as a file Gradio received for this app, links resolved; `BadInput` (one sentence for every other
    path, whether or not it exists) otherwise."""
    refusal = BadInput(NOT_RECEIVED.format(what=what))
    if not isinstance(path, (str, Path)) or not str(path).strip() or "\x00" in str(path):
        raise refusal
    root = Path(get_upload_folder()).resolve()
    try:
        resolved = Path(os.path.abspath(path)).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a name too long
        raise refusal from None
    if resolved == root or not resolved.is_relative_to(root) or not resolved.is_file():
        raise refusal
    return resolved


MAX_REDIRECTS = 10


def fetched_image(url: str, deadline: float) -> bytes:
    """The bytes at a caller's http(s) `url`, fetched the way Gradio fetches file URLs — public addresses only,
    every redirect checked again (safehttpx) — but bounded as every remote answer here is: at most an upload's
    size (MAX_UPLOAD_BYTES), asked for uncompressed, and all of it within `deadline` seconds however it trickles.
    `BadInput` says what went wrong."""
    try:
        return asyncio.run(asyncio.wait_for(_fetch(url), deadline))
    except TimeoutError:
        raise BadInput(f"The image at {url} did not arrive within {deadline:g} s; the download was stopped.") from None
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - a refused address, an HTTP error, a broken connection: one sentence
        raise BadInput(f"The image at {url} could not be downloaded ({exc}).") from None


async def _fetch(url: str) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        host = httpx.URL(url).host
        if not host:
            raise BadInput(f"The image URL {url} names no host.")
        # Gradio's own list of hosts let through without the public-address check (the Hub answers from private ones)
        allowed = safehttpx.matches_domain_whitelist(host, processing_utils.PUBLIC_HOSTNAME_WHITELIST)
        transport = None if allowed else safehttpx.AsyncSecureTransport(await safehttpx.async_validate_url(host))
        async with (
            httpx.AsyncClient(transport=transport) as client,
            client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        ):
            if response.has_redirect_location:
                url = urljoin(str(response.url), response.headers["Location"])
                continue
            if response.status_code != 200:
                raise BadInput(f"The image at {url} could not be downloaded (HTTP {response.status_code}).")
            return await _bounded_body(response, url)
    raise BadInput(f"The image at {url} redirects more than {MAX_REDIRECTS} times.")


async def _bounded_body(response: httpx.Response, url: str) -> bytes:
    too_large = BadInput(
        f"The image at {url} is larger than {MAX_UPLOAD_BYTES // 2**20} MB, the most an upload may be."
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise too_large
    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        raise BadInput(f"The image at {url} came compressed when asked for plainly; it was not unpacked.")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise too_large
    return bytes(body)
