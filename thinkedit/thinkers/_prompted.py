"""What every model thinker shares — in-process Qwen-VL, OpenAI-compatible servers, Inference Providers.

A `PromptedThinker` holds its row, its settings and the model it asks, reads the critique and polish
templates at once (so a wrong `--thinker-template` is refused before any model runs), and turns `critique`,
`polish` and `ask` into one question to the model each. A subclass says how to ask, in `answer`.
"""

from __future__ import annotations

from PIL import Image

from ..backend import BackendSpec, OnToken
from ..config import Settings
from ..critique import Critique, load_template, parse_critique, parse_polish, render


class PromptedThinker:
    def __init__(self, spec: BackendSpec, settings: Settings, role: str = "thinker") -> None:
        self.spec = spec
        self.settings = settings
        self.role = role  # "judge" when a judge asks through this class: its own model (and URL and key)
        self.model = settings.role(role).model or spec.model
        self.critique_template = load_template("critique", settings.thinker_template)
        self.polish_template = load_template("polish", settings.polish_template)

    def answer(self, images: list[Image.Image], text: str, on_token: OnToken | None) -> tuple[str, str]:
        """(content, reasoning given apart from it) of the model's reply to the images then `text`, streamed
        piece by piece into `on_token`."""
        raise NotImplementedError

    def critique(
        self,
        source: Image.Image,
        edited: Image.Image,
        instruction: str,
        prompt: str,
        *,
        on_token: OnToken | None = None,
        region: str | None = None,
    ) -> Critique:
        content, reasoning = self.answer(
            [source, edited], render(self.critique_template, instruction, prompt, region=region), on_token
        )
        return parse_critique(content, reasoning_content=reasoning)

    def polish(self, source: Image.Image, instruction: str, *, on_token: OnToken | None = None) -> str:
        content, reasoning = self.answer([source], render(self.polish_template, instruction), on_token)
        return parse_polish(content, instruction, reasoning_content=reasoning)

    def ask(self, images: list[Image.Image], text: str, *, on_token: OnToken | None = None) -> str:
        """The model's answer to the images then `text` (its reasoning when the answer came only there)."""
        content, reasoning = self.answer(images, text, on_token)
        return content if content.strip() else reasoning
