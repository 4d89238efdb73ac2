"""How many pixels the web app's runs may hold in memory at once: admission by a memory budget.

A run decodes its source, keeps every turn's edit, writes display copies, and the classic backends work on
float arrays of the image; a 40-megapixel Compare (two runs) took a server from 0.2 GB to 3.3 GB. Concurrency
slots alone do not bound that: six such Compares at once outgrow most machines, and the kernel then kills the app
and every visitor with it. So each run is admitted only when what it will hold fits in the budget beside the runs
already going; otherwise its visitor is told to wait or to send a smaller image, and nobody else is affected.

The size is read from the image's header, before anything is decoded.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from .config import Settings
from .errors import BadInput

# What one run holds per source pixel at its peak, with headroom: measured with the classic editor and critic (the
# heaviest per pixel; a diffusion editor works at its own ~1 megapixel) by `scripts/flood_public.py`: a 40-megapixel
# two-turn run peaked at ~1.5 GB above the idle server, ~38 bytes a pixel.
BYTES_PER_PIXEL = 48


def machine_memory() -> int | None:
    """This machine's physical memory in bytes, where the system says (Linux, macOS), else None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def default_budget() -> int:
    """Half of the machine's memory (the rest for the models, Python and the system); 8 GB when unknown."""
    total = machine_memory()
    return total // 2 if total else 8 * 2**30


def header_pixels(source: Any) -> int | None:
    """The pixel count an image's header states (a path, bytes or a PIL image), without decoding its pixels;
    None when it is not an image Pillow recognises (reading it later says why)."""
    if isinstance(source, Image.Image):
        return source.width * source.height
    try:
        opened = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source))
    except Exception:  # noqa: BLE001 - not an image, unreadable, too large a bomb: load_image gives the sentence
        return None
    with opened, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return opened.width * opened.height


class MemoryBudget:
    """The bytes that runs in this process may hold at once; `hold` admits one request's runs or refuses them."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.held = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, pixels: int | None, runs: int = 1, max_pixels: int | None = None) -> Iterator[None]:
        """Hold what `runs` runs of a `pixels`-pixel image need for the duration of the block, or raise `BadInput`
        with what the visitor can do: use a smaller image (over `max_pixels`, or too large for this server), or
        wait (busy now)."""
        if not pixels:
            yield  # nothing readable: the request is refused with the image's own sentence
            return
        if max_pixels and pixels > max_pixels:
            raise BadInput(
                f"The image is {pixels / 1e6:.1f} megapixels; this demo takes images of at most "
                f"{max_pixels / 1e6:g} megapixels. Downscale it first."
            )
        need = pixels * BYTES_PER_PIXEL * runs
        fits = self.budget // (BYTES_PER_PIXEL * runs)
        if need > self.budget:
            raise BadInput(
                f"The image is {pixels / 1e6:.1f} megapixels; this server can take at most {fits / 1e6:.1f} "
                f"megapixels for {'this comparison' if runs > 1 else 'a run'}. Downscale it first."
            )
        with self._lock:
            if self.held + need > self.budget:
                room = (self.budget - self.held) // (BYTES_PER_PIXEL * runs)
                raise BadInput(
                    f"The server is busy with other large images. Try again in a minute, or use a smaller image "
                    f"(at most {room / 1e6:.1f} megapixels would fit now)."
                )
            self.held += need
        try:
            yield
        finally:
            with self._lock:
                self.held -= need


_BUDGETS: dict[int, MemoryBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(settings: Settings) -> MemoryBudget:
    """The process's budget for its runs (`THINKEDIT_RUN_MEMORY_GB`, default half the machine's memory): one per
    process, shared by every page, tab and MCP call in it, since they share the machine's memory."""
    size = int(settings.run_memory_gb * 2**30) if settings.run_memory_gb else default_budget()
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault(size, MemoryBudget(size))


def admitted(settings: Settings, source: Any, runs: int = 1) -> contextlib.AbstractContextManager:
    """Hold the memory `runs` runs of the image `source` (a path, bytes or a PIL image) need while the block runs;
    `BadInput` when it does not fit now or at all. Public pages also take images of at most
    `public_max_megapixels` (`THINKEDIT_PUBLIC_MAX_MEGAPIXELS`)."""
    limit = int(settings.public_max_megapixels * 1e6) if settings.public else None
    return budget_for(settings).hold(header_pixels(source) if source is not None else None, runs, limit)
