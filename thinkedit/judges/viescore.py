"""What the model judges share: the two VIEScore questions, reading the answers, asking again.

The questions are our own texts (`thinkedit/prompts/judge_semantic.txt`, `judge_quality.txt`; a folder of
files with the same names replaces them, `--judge-templates DIR`). An answer is read tolerantly: the
VIEScore shape first, `{"score": [7, 9], "reasoning": "..."}`, also inside a fenced ```json block or after
a `<think>` block, then a bare `[7, 9]`, then a reply of plain numbers. An unreadable answer (or numbers
outside 0–10) is asked again up to `judge_retries` times with a reminder of the format (`judge_retry.txt`),
then recorded as None.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from PIL import Image

from ..backend import BackendSpec
from ..config import Settings
from ..critique import render
from ..errors import BadInput
from . import Verdict

TEMPLATES = ("judge_semantic", "judge_quality", "judge_retry")
_NUMBER = r"-?\d+(?:\.\d+)?"
_SCORE_LIST = re.compile(rf"""["']?scores?["']?\s*[:=]\s*\[?\s*((?:["']?{_NUMBER}["']?\s*,?\s*)+)""", re.I)
_BARE_PAIR = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")
_ONLY_NUMBERS = re.compile(rf"\s*{_NUMBER}(?:\s*[,;/ \n]\s*{_NUMBER})+\s*[.]?\s*")


def load_templates(folder: str | Path | None = None) -> dict[str, str]:
    """Our three judge texts, or a folder's files of the same names (the semantic one needs {instruction})."""
    texts = {
        name: resources.files("thinkedit.prompts").joinpath(f"{name}.txt").read_text("utf-8") for name in TEMPLATES
    }
    if folder:
        folder = Path(folder)
        if not folder.is_dir():
            raise BadInput(
                f"--judge-templates must be a folder holding judge_semantic.txt and judge_quality.txt; "
                f"{folder} is not a folder."
            )
        for name in TEMPLATES:
            file = folder / f"{name}.txt"
            if file.is_file():
                texts[name] = file.read_text(encoding="utf-8")
            elif name != "judge_retry":
                raise BadInput(f"--judge-templates {folder} has no {name}.txt.")
    if "{instruction}" not in texts["judge_semantic"]:
        raise BadInput("The judge's semantic template has no {instruction} placeholder.")
    return texts


def read_scores(reply: str | None) -> list[float] | None:
    """The two 0–10 numbers of a judge's reply, or None when there are not exactly two readable ones."""
    text = reply or ""
    closed = re.split(r"</\s*think\s*>", text, flags=re.I)
    for body in [closed[-1], text] if len(closed) > 1 else [text]:  # after the reasoning first, then anywhere
        lists = _SCORE_LIST.findall(body)
        if lists:
            return _pair(re.findall(_NUMBER, lists[-1]))
        pairs = _BARE_PAIR.findall(body)
        if pairs:
            return _pair(list(pairs[-1]))
        if _ONLY_NUMBERS.fullmatch(body):
            return _pair(re.findall(_NUMBER, body))
    return None


def _pair(numbers: list[str]) -> list[float] | None:
    values = [float(n) for n in numbers]
    if len(values) != 2 or not all(0 <= v <= 10 for v in values):
        return None
    return values


class ModelJudge:
    """A vision-language model asked the two questions through a thinker class's `ask(images, text)`; a subclass
    names that class."""

    asker_class: type  # a thinker class, built here in the judge role: its own model, URL and key

    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.asker = self.asker_class(spec, settings, role="judge")
        self.templates = load_templates(settings.judge_templates)
        self.retries = max(0, settings.judge_retries)

    @property
    def model(self) -> str | None:
        return self.asker.model  # a served model's name is known after the first call

    def judge(self, source: Image.Image, edited: Image.Image, instruction: str) -> Verdict:
        semantic, semantic_reply, asked = self._scores(
            [source, edited], render(self.templates["judge_semantic"], instruction)
        )
        quality, quality_reply, more = self._scores([edited], self.templates["judge_quality"])
        return Verdict(semantic, quality, semantic_reply, quality_reply, asked + more)

    def _scores(self, images: list[Image.Image], text: str) -> tuple[list[float] | None, str, int]:
        """(the two numbers or None, the last reply, questions asked)."""
        reply = ""
        for attempt in range(self.retries + 1):
            reply = self.asker.ask(images, text if attempt == 0 else text + self.templates["judge_retry"])
            scores = read_scores(reply)
            if scores is not None:
                return scores, reply, attempt + 1
        return None, reply, self.retries + 1
