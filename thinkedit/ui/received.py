"""The one rule for files a request names: only a file Gradio itself received for this app is opened.

Endpoints that take their input raw (`preprocess=False`, so that a broken or huge upload gets our sentence rather
than a decoder's) skip Gradio's own check that a file payload names an upload. Every such value goes through
`received_file`: the path, once links are resolved, must lie in Gradio's upload folder (which also holds its cache
of the files it sent). Anything else — a server path, a link out of the folder, a file that does not exist — gets
the same sentence, so a caller learns nothing about the server's files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
