"""The web app: `build_app(settings)` makes the page, `launch(demo, settings)` serves it safely."""

from __future__ import annotations

from typing import Any

import uvicorn.config
from starlette.middleware import Middleware

from ..config import Settings
from ..http_protocol import BodyLimits
from .layout import ASSETS, CSS, build_app
from .received import MAX_UPLOAD_BYTES

MAX_BODY_BYTES = MAX_UPLOAD_BYTES * 4 // 3 + 2**20  # the largest upload as base64 in a JSON call, and room around it

__all__ = ["build_app", "launch", "launch_options"]


def launch_options(settings: Settings, share: bool = False) -> dict[str, Any]:
    """`launch()` keyword arguments: no file reads outside the assets, bounded uploads and request bodies (the
    largest upload sent as a data URL fits; nothing larger or slower is read), no telemetry, and the MCP server
    only when `settings.mcp` says so (GRADIO_MCP_SERVER alone does not turn it on)."""
    allowed = [str(ASSETS)] if ASSETS.is_dir() else []
    return dict(
        server_name=settings.host,
        server_port=settings.port,
        share=share,
        show_error=False,
        allowed_paths=allowed,
        max_file_size=MAX_UPLOAD_BYTES,
        ssr_mode=False,
        enable_monitoring=False,
        run_history=False,
        footer_links=["api"],
        css=CSS,
        mcp_server=settings.mcp,
        app_kwargs={"middleware": [Middleware(BodyLimits, max_bytes=MAX_BODY_BYTES)]},
    )


def launch(demo, settings: Settings, share: bool = False, **extra):
    """Queue (at most `settings.max_queue` waiting, `settings.ui_concurrency` at once) and serve `demo`;
    `extra` goes to `Blocks.launch` (tests pass prevent_thread_lock).

    Gradio builds its uvicorn server with uvicorn's "auto" HTTP protocol and no way to pass another; naming
    `HeaderTimeoutProtocol` as "auto" in uvicorn's own protocol table gives the web app what serve-editor has:
    a connection whose request headers are not complete within uvicorn's keep-alive timeout (Gradio's server:
    uvicorn's 5 s) is closed, so slow-loris clients cannot hold the server's sockets.
    """
    uvicorn.config.HTTP_PROTOCOLS["auto"] = "thinkedit.http_protocol:HeaderTimeoutProtocol"
    demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.ui_concurrency)
    return demo.launch(**{**launch_options(settings, share), **extra})
