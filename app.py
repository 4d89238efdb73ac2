"""ThinkEdit web app: `python app.py [--host H] [--port P] [--public] [--mcp] [--share]`.

Also read from the environment: THINKEDIT_HOST, THINKEDIT_PORT, THINKEDIT_PUBLIC, THINKEDIT_MCP and every other
THINKEDIT_* setting (backends, models, URLs, runs folder). It binds 127.0.0.1 unless told otherwise,
makes a public share link only with --share, and makes no network call at start.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import os
import shutil
import signal
import tempfile

# Before gradio is imported: no analytics, no version check, no hub telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from thinkedit.config import add_app_arguments, settings_from_args  # noqa: E402

M_ARENA_MAX = -8  # glibc's mallopt option number


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (unless MALLOC_ARENA_MAX says otherwise); True when the cap is set.

    glibc gives new threads their own arenas (up to 8 per core) and keeps freed image buffers in them for
    reuse; the server starts threads for every run, so its memory kept growing by ~1 MB a run for hundreds
    of runs. Call before any thread starts.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        return ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas) == 1
    except (OSError, AttributeError):  # not Linux with glibc: its allocator, its rules
        return False


def own_gradio_folder(public: bool = False) -> str:
    """Give Gradio's copies of what the app serves (uploads, images sent to the page, zips) a folder of this app's
    own, inside GRADIO_TEMP_DIR when the operator set one, removed when the app exits. Call before gradio is
    imported. Gradio itself removes only some of its copies, and the default folder is shared by every app.

    Gradio names each file it holds by its path in that folder, in an upload's answer and in every file URL of the
    page. So a public page's folder is a random one directly in the system temp folder (TMPDIR), whatever
    GRADIO_TEMP_DIR says: visitors see that name and no folder of the operator's."""
    parent = None if public else os.environ.get("GRADIO_TEMP_DIR") or None
    if parent:
        os.makedirs(parent, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="thinkedit-gradio-", dir=parent)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["GRADIO_TEMP_DIR"] = folder
    return folder


def stop_on_signals() -> None:
    """End the app on SIGTERM (how service managers and container runtimes stop a process) the way Ctrl-C does:
    the server closes and the app's temp folders are removed. A second signal while it closes (Ctrl-C twice,
    `timeout` forwarding a SIGTERM that also reached the app) is not allowed to break that off with a traceback;
    Gradio's close is bounded (it waits 5 s for its server thread)."""
    stopping = []

    def interrupt(signum, frame):
        if not stopping:
            stopping.append(signum)
            raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, interrupt)


def main(argv: list[str] | None = None) -> None:
    limit_malloc_arenas()
    stop_on_signals()
    parser = argparse.ArgumentParser(description="ThinkEdit: a live Think-while-Edit studio in the browser.")
    add_app_arguments(parser)
    # not a setting: a one-off choice of this launch
    parser.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")
    args = parser.parse_args(argv)

    from thinkedit.errors import ThinkEditError

    try:  # a bad THINKEDIT_* value: one sentence, as the CLI says it
        settings = settings_from_args(args)
    except ThinkEditError as exc:
        parser.exit(2, f"error: {exc}\n")
    own_gradio_folder(settings.public)  # before gradio is imported

    from thinkedit import zerogpu
    from thinkedit.registry import build_backend

    try:  # a Space's missing weights: one sentence too
        if zerogpu.on_zero_gpu():  # GPU functions and weights here, in the main process, before launch
            zerogpu.decorate_slices()
            zerogpu.preload([build_backend(role, settings) for role in ("editor", "thinker")])
    except ThinkEditError as exc:
        parser.exit(2, f"error: {exc}\n")

    from thinkedit.ui import build_app, launch

    launch(build_app(settings), settings, share=args.share)


if __name__ == "__main__":
    main()
