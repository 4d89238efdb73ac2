"""What every model thinker shares — in-process Qwen-VL, OpenAI-compatible servers, Inference Providers.

A `PromptedThinker` holds its row, its settings and the model it asks, reads the critique and polish
templates at once (so a wrong `--thinker-template` is refused before any model runs), and turns `critique`,
`polish` and `ask` into one question to the model each. A subclass says how to ask, in `answer`, and what the
answer cost in tokens (a critique carries them in `Critique.tokens`; a polish reports them to the run's meter).
"""

from __future__ import annotations

from PIL import Image

from ..backend import BackendSpec, OnToken
from ..compute import Tokens, report_tokens
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
    ) -> Critique:
        content, reasoning, tokens = self.answer(
            [source, edited], render(self.critique_template, instruction, prompt), on_token
        )
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
