"""What the model judges share: the two VIEScore questions, reading the answers, asking again.

Two protocols (`--judge-protocol`):

- `ours` (the default): our own question texts (`thinkedit/prompts/judge_semantic.txt`, `judge_quality.txt`; a
  folder of files with the same names replaces them, `--judge-templates DIR`), sent as the thinker sends its
  question: the images first (PNG, fitted to `thinker_image_side`), then the text.
- `viescore`: the official request of GEdit-Bench's scorer. Its prompts are read at run time from the user's
  checkout of Step1X-Edit or VIEScore (`--viescore-prompts`: `viescore/vie_prompts.py`, whose string constants are
  read, never run), joined as VIEScore's "tie" task joins them; the edited image is resized to the source's size,
  and a chat server gets the text first, then JPEG images, with `max_tokens` 1400. Answers are lists of any
  length, as VIEScore takes them (SC and PQ are each the smallest number).

An answer is read tolerantly: the VIEScore shape first, `{"score": [7, 9], "reasoning": "..."}`, also inside a
fenced ```json block or after a `<think>` block, then a bare `[7, 9]`, then a reply of plain numbers. An
unreadable answer (or numbers outside 0–10) is asked again up to `judge_retries` times (ours adds a reminder of
the format, `judge_retry.txt`; the official protocol asks the same question again), then recorded as None:
the official scorer substitutes a random score instead, which we never do.

With a mask the semantic question also carries the region in words: ours as a section after the instruction
(`critique.render`), the official one as a second line of its instruction (the benchmarks have no masks, so their
official requests are never changed).
"""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

from PIL import Image

from ..backend import BackendSpec
from ..config import Settings
from ..critique import defuse, render
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


def read_scores(reply: str | None, count: int | None = 2) -> list[float] | None:
    """The 0–10 numbers of a judge's reply: exactly `count` of them (any number, at least one, when None), or None
    when they are not there or not readable."""
    text = reply or ""
    closed = re.split(r"</\s*think\s*>", text, flags=re.I)
    for body in [closed[-1], text] if len(closed) > 1 else [text]:  # after the reasoning first, then anywhere
        lists = _SCORE_LIST.findall(body)
        if lists:
            return _scores(re.findall(_NUMBER, lists[-1]), count)
        pairs = _BARE_PAIR.findall(body)
        if pairs:
            return _scores(list(pairs[-1]), count)
        if _ONLY_NUMBERS.fullmatch(body):
            return _scores(re.findall(_NUMBER, body), count)
    return None


def _scores(numbers: list[str], count: int | None) -> list[float] | None:
    values = [float(n) for n in numbers]
    if not values or (count is not None and len(values) != count) or not all(0 <= v <= 10 for v in values):
        return None
    return values


# -- VIEScore's own request ----------------------------------------------------------------------------------

VIESCORE_MAX_TOKENS = 1400  # what VIEScore's GPT backbone asks for
VIESCORE_FILES = (  # where vie_prompts.py lies in the checkouts people have
    "vie_prompts.py",
    "viescore/vie_prompts.py",
    "GEdit-Bench/viescore/vie_prompts.py",  # Step1X-Edit
    "eval/gedit/viescore/vie_prompts.py",  # the EditThinker reference
)
VIESCORE_PARTS = {  # VIEScore's "tie" (text-guided image editing) task: the constants it joins, one per line
    "semantic": ("_context_no_delimit", "_prompts_0shot_two_image_edit_rule", "_prompts_0shot_tie_rule_SC"),
    "quality": ("_context_no_delimit", "_prompts_0shot_rule_PQ"),
}


def load_viescore_prompts(path: str | Path | None) -> dict[str, str]:
    """VIEScore's two questions for image editing, read from the user's checkout: {"semantic" (with its
    `<instruction>` placeholder), "quality"}. The file's string constants are read; its code never runs."""
    if not path:
        raise BadInput(
            "--judge-protocol viescore reads the official prompts from your checkout: pass --viescore-prompts with "
            "a clone of github.com/stepfun-ai/Step1X-Edit or github.com/TIGER-AI-Lab/VIEScore (or its "
            "viescore/vie_prompts.py)."
        )
    root = Path(path).expanduser()
    file = next((root / name for name in VIESCORE_FILES if (root / name).is_file()), root if root.is_file() else None)
    if file is None:
        raise BadInput(f"--viescore-prompts {root}: no vie_prompts.py there (looked for {', '.join(VIESCORE_FILES)}).")
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{file} is not the Python file VIEScore's prompts are kept in: {exc}") from None
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    missing = sorted({name for names in VIESCORE_PARTS.values() for name in names} - set(constants))
    if missing:
        raise BadInput(f"{file} has no {', '.join(missing)}: is it VIEScore's vie_prompts.py?")
    prompts = {kind: "\n".join(constants[name] for name in names) for kind, names in VIESCORE_PARTS.items()}
    if "<instruction>" not in prompts["semantic"]:
        raise BadInput(f"{file}: the editing question has no <instruction> placeholder.")
    return prompts


class ModelJudge:
    """A vision-language model asked the two questions through a thinker class's `ask(images, text)`; a subclass
    names that class."""

    asker_class: type  # a thinker class, built here in the judge role: its own model, URL and key

    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.official = settings.judge_protocol == "viescore"
        if self.official:
            self.prompts = load_viescore_prompts(settings.viescore_prompts)
            settings = settings.replace(thinker_max_new_tokens=VIESCORE_MAX_TOKENS)
        else:
            self.templates = load_templates(settings.judge_templates)
        self.asker = self.asker_class(spec, settings, role="judge")
        if self.official and hasattr(self.asker, "layout"):  # a chat server: VIEScore's GPT request exactly
            self.asker.layout = "viescore"
        self.retries = max(0, settings.judge_retries)

    @property
    def model(self) -> str | None:
        return self.asker.model  # a served model's name is known after the first call

    def judge(
        self, source: Image.Image, edited: Image.Image, instruction: str, *, region: str | None = None
    ) -> Verdict:
        if self.official:
            edited = edited.resize(source.size)  # as GEdit-Bench's scorer does before it asks
            asked = instruction + (f"\n{defuse(region)}" if region else "")
            questions = (self.prompts["semantic"].replace("<instruction>", asked), self.prompts["quality"])
            reminder, count = "", None  # VIEScore asks the same question again and takes lists of any length
        else:
            semantic = render(self.templates["judge_semantic"], instruction, region=region)
            questions = (semantic, self.templates["judge_quality"])
            reminder, count = self.templates["judge_retry"], 2
        semantic, semantic_reply, asked = self._ask([source, edited], questions[0], reminder, count)
        quality, quality_reply, more = self._ask([edited], questions[1], reminder, count)
        return Verdict(semantic, quality, semantic_reply, quality_reply, asked + more)

    def _ask(
        self, images: list[Image.Image], text: str, reminder: str, count: int | None
    ) -> tuple[list[float] | None, str, int]:
        """(the numbers or None, the last reply, questions asked)."""
        reply = ""
        for attempt in range(self.retries + 1):
            reply = self.asker.ask(images, text if attempt == 0 else text + reminder)
            scores = read_scores(reply, count)
            if scores is not None:
                return scores, reply, attempt + 1
        return None, reply, self.retries + 1
