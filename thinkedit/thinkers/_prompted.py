"""What every model thinker shares — in-process Qwen-VL, OpenAI-compatible servers, Inference Providers.

A `PromptedThinker` holds its row, its settings and the model it asks, reads the critique and polish
templates at once (so a wrong `--thinker-template` is refused before any model runs), and turns `critique`,
`polish` and `ask` into one question to the model each. A subclass says how to ask, in `answer`, and what the
answer cost in tokens (a critique carries them in `Critique.tokens`; a polish reports them to the run's meter).

A row may name the critique template its model was trained with (`options["template_url"]`: the EditThinker
authors' `prompt_template.txt` for the `editthinker` rows). It is fetched at first use into the hub cache folder,
as weights are, and read from there ever after; `--thinker-template` still wins. Offline and not fetched yet, the
thinker uses ThinkEdit's own template and says once how to fetch it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from ..backend import BackendSpec, OnToken
from ..compute import Tokens, report_tokens
from ..config import Settings
from ..critique import Critique, load_template, parse_critique, parse_polish, render
from ..runtime import offline

log = logging.getLogger(__name__)
FETCH_TIMEOUT_S = 30.0
_told: set[str] = set()  # template URLs whose absence was already reported in this process


class PromptedThinker:
    def __init__(self, spec: BackendSpec, settings: Settings, role: str = "thinker") -> None:
        self.spec = spec
        self.settings = settings
        self.role = role  # "judge" when a judge asks through this class: its own model (and URL and key)
        self.model = settings.role(role).model or spec.model
        own = spec.options.get("template_url") if role == "thinker" else None
        self.critique_template = load_template(
            "critique", settings.thinker_template or (own and fetched_template(own, spec.name))
        )
        self.polish_template = load_template("polish", settings.polish_template)

    def answer(self, images: list[Image.Image], text: str, on_token: OnToken | None) -> tuple[str, str, Tokens]:
        """(content, reasoning given apart from it, the tokens it took) of the model's reply to the images then
        `text`, streamed piece by piece into `on_token`."""
        raise NotImplementedError

    def critique(
        self,
        source: Image.Image,
        edited: Image.Image,
        instruction: str,
        prompt: str,
        *,
        on_token: OnToken | None = None,
        feedback: str | None = None,
        region: str | None = None,
    ) -> Critique:
        """The critique of `edited`; the person's `feedback` and the masked `region` (in words), when there are
        some, go into the template as sections of their own."""
        text = render(self.critique_template, instruction, prompt, feedback=feedback, region=region)
        content, reasoning, tokens = self.answer([source, edited], text, on_token)
        critique = parse_critique(content, reasoning_content=reasoning)
        critique.tokens = tokens
        return critique

    def polish(self, source: Image.Image, instruction: str, *, on_token: OnToken | None = None) -> str:
        content, reasoning, tokens = self.answer([source], render(self.polish_template, instruction), on_token)
        report_tokens(tokens)
        return parse_polish(content, instruction, reasoning_content=reasoning)

    def ask(self, images: list[Image.Image], text: str, *, on_token: OnToken | None = None) -> str:
        """The model's answer to the images then `text` (its reasoning when the answer came only there)."""
        content, reasoning, _ = self.answer(images, text, on_token)
        return content if content.strip() else reasoning


def template_path(url: str) -> Path:
    """Where the template at `url` is kept: under the hub cache's home, by host and path."""
    from huggingface_hub import constants

    parts = urlsplit(url)
    return Path(constants.HF_HOME) / "thinkedit" / "templates" / parts.netloc / parts.path.lstrip("/")


def fetched_template(url: str, name: str) -> str | None:
    """The local copy of the template at `url`, fetched now if it is not here yet; None (and one notice) when it
    cannot be had, so that ThinkEdit's own template is used."""
    path = template_path(url)
    if path.is_file():
        return str(path)
    why = "HF_HUB_OFFLINE=1 forbids downloading it" if offline() else _download(url, path)
    if why is None:
        return str(path)
    if url not in _told:
        _told.add(url)
        log.warning(
            "The %s thinker's own critique template is not on this machine (%s); using ThinkEdit's template. "
            "Fetch it once with `curl -L --create-dirs -o '%s' %s` (or pass --thinker-template FILE).",
            name,
            why,
            path,
            url,
        )
    return None


def _download(url: str, path: Path) -> str | None:
    """Fetch `url` into `path` (whole or not at all); why it failed, or None."""
    import httpx2

    try:
        response = httpx2.get(url, timeout=FETCH_TIMEOUT_S, follow_redirects=True)
        response.raise_for_status()
    except httpx2.HTTPError as exc:
        return f"fetching {url} failed: {type(exc).__name__}: {exc}"
    if "{original_instruction}" not in response.text and "{instruction}" not in response.text:
        return f"{url} is not a critique template (it has no instruction placeholder)"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(response.text, encoding="utf-8")
    partial.replace(path)
    return None
