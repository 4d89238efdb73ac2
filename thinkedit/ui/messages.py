"""What the page says when something is refused or goes wrong: the one place errors become `gr.Error` (refused)
or `gr.Warning` (the run goes on), escaped the way Gradio's toasts need."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from .view import without_paths


def toast_text(message: Any) -> str:
    """Toast text as Gradio needs it: it renders toasts as HTML, so `& < >` are escaped (no markup from model or
    user text can form); quotes are left as written, so API callers read the message as it was meant."""
    return html.escape(str(message), quote=False)


def refused(message: Any, public: bool) -> gr.Error:
    """A refusal as the page shows it; a public page's names no folder of the server's."""
    text = without_paths(str(message)) if public else str(message)
    return gr.Error(toast_text(text), print_exception=False)


def warn(message: str) -> None:
    gr.Warning(toast_text(message))
