"""The thinker's text protocol: templates in, `<think>…</think><score>…</score><answer>…</answer>` out.

Every thinker (EditThinker-8B, an OpenAI-compatible server, the offline critic) speaks this text, and
`parse_critique` turns whatever came back into a `Critique` without ever raising.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .compute import Tokens
from .errors import BadInput

_TAG = re.compile(r"<\s*(/?)\s*(think|score|answer)\s*>", re.IGNORECASE)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
# A score's value as models write it: 8, "8", [8] (EditThinker's template shows "semantic": [0-10]), "8/10",
# "8 points"; read by `_to_score`, which refuses what is not one number on the 0-10 scale.
_SCORE_VALUE = r"""(\[[^\]\n]*\]?|"[^"\n]*"?|'[^'\n]*'?|[^,;}\]\n]*?(?=\s*(?:[,;}\]\n]|['"]?\w+['"]?\s*[:=]|$)))"""
_LEADING_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?))?")
_PREFIX = re.compile(
    r"^\s*\**\s*(?:re-?written|refined|revised|improved|new|final|edit(?:ing)?)?\s*"
    r"(?:prompt|instruction|answer)\s*\**\s*[:：]\s*\**\s*",
    re.IGNORECASE,
)


@dataclass
class Critique:
    """What a thinker said about one edit. Scores are 0..10, or None when they could not be read."""

    semantic: float | None
    quality: float | None
    reasoning: str
    refined_prompt: str | None
    raw: str
    tokens: Tokens = field(default_factory=Tokens)  # what the answer cost the thinker; None parts: not known

    def satisfied(self, threshold: float) -> bool:
        return (
            self.semantic is not None
            and self.quality is not None
            and self.semantic >= threshold
            and self.quality >= threshold
        )

    @property
    def overall(self) -> float | None:
        return overall(self.semantic, self.quality)


CHARS_PER_TOKEN = 16  # generous: a token of real text is 1-6 characters


def answer_chars(max_new_tokens: int) -> int:
    """The characters an answer of at most `max_new_tokens` tokens may hold: where the answer of a server that
    ignores its token limit is cut, so that a run, its trajectory.json and the page stay small."""
    return max(1, max_new_tokens) * CHARS_PER_TOKEN


def overall(semantic: float | None, quality: float | None) -> float | None:
    """Geometric mean of the two scores: a turn must be good on both to rank high; None if one is unknown."""
    if semantic is None or quality is None:
        return None
    return math.sqrt(max(semantic, 0.0) * max(quality, 0.0))


def score_text(value: float | None, signed: bool = False) -> str:
    """A score (or with `signed`, a gain in score) for people, as every page and report shows one: at most two
    decimals ('7.47', '9.8', '7', '+0.82'), or '–' when it could not be read."""
    if value is None:
        return "–"
    return f"{round(value, 2) + 0.0:{'+' if signed else ''}g}"  # + 0.0: a rounded -0.001 shows as 0


def format_critique(semantic: float | None, quality: float | None, reasoning: str, refined_prompt: str) -> str:
    """The canonical model output for a critique (what the offline critic streams, what SFT data holds)."""
    score = json.dumps({"semantic": _plain(semantic), "quality": _plain(quality)})
    return f"<think>{reasoning}</think>\n<score>{score}</score>\n<answer>{refined_prompt}</answer>"


def _plain(value: float | None):
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(float(value), 1)


# -- templates ---------------------------------------------------------------------------------------


# The EditThinker authors' own template (inference/prompt_template.txt in appletea233/EditThinker) names the
# placeholders differently and marks the two images with `<image>`; the images go before the text anyway.
AUTHORS_PLACEHOLDERS = {"{original_instruction}": "{instruction}", "{rewritten_prompt}": "{prompt}", "<image>": ""}


def load_template(kind: str, path: str | Path | None = None) -> str:
    """The `critique` or `polish` template: a user's file when given (ours or the EditThinker authors'
    placeholders), else the one shipped here."""
    if path:
        file = Path(path)
        if not file.is_file():
            raise BadInput(f"Template file not found: {file}")
        text = file.read_text(encoding="utf-8")
        for theirs, ours in AUTHORS_PLACEHOLDERS.items():
            text = text.replace(theirs, ours)
        text = text.lstrip()
        if kind == "critique" and "{instruction}" not in text:
            raise BadInput(f"Template {file} has no {{instruction}} placeholder.")
        return text
    return resources.files("thinkedit.prompts").joinpath(f"{kind}.txt").read_text(encoding="utf-8")


# Sections a critique template (ours, the authors', a judge's) may gain, each as a paragraph of its own after the one
# that names the prompt used (or the instruction, or at the end): the masked region in words, the person's feedback.
REGION_SECTION = "The region the edit may change (the person painted a mask over the source):\n{region}"
FEEDBACK_SECTION = (
    "The person who asked for the edit has looked at the edited image and says:\n{feedback}\n"
    "Score the edit as usual, and write the next prompt so that it does what they say: change what they ask to "
    "change, and keep what they did not mention."
)


def render(
    template: str,
    instruction: str,
    prompt: str | None = None,
    *,
    feedback: str | None = None,
    region: str | None = None,
) -> str:
    """Fill a template, with the masked `region` (in words) and the person's `feedback` as sections of their own
    when there are some. User text is defused first so it cannot smuggle protocol tags into the answer."""
    if region is not None:
        template = with_section(template, REGION_SECTION)
    if feedback is not None:
        template = with_section(template, FEEDBACK_SECTION)
    values = {
        "instruction": defuse(instruction),
        "prompt": defuse(prompt if prompt is not None else instruction),
        "feedback": defuse(feedback or ""),
        "region": defuse(region or ""),
    }
    return re.sub(r"\{(instruction|prompt|feedback|region)\}", lambda m: values[m.group(1)], template)


def with_section(template: str, section: str) -> str:
    """`template` with `section` as a paragraph after the one that holds `{prompt}` (else `{instruction}`; the end
    when neither is there)."""
    at = next((template.find(key) for key in ("{prompt}", "{instruction}") if key in template), -1)
    end = template.find("\n\n", at) if at >= 0 else -1
    if end < 0:
        return f"{template.rstrip()}\n\n{section}\n"
    return f"{template[:end]}\n\n{section}{template[end:]}"


def defuse(text: str) -> str:
    """Turn `<score>`-like tags in user text into harmless `[score]` so an echo is never parsed."""
    return _TAG.sub(lambda m: f"[{m.group(1)}{m.group(2).lower()}]", text)


# -- parsing -----------------------------------------------------------------------------------------


def parse_critique(text: str | None, reasoning_content: str | None = None) -> Critique:
    """Read a thinker's output, however broken. Never raises; unreadable parts become None."""
    content = text or ""
    separate = (reasoning_content or "").strip()
    raw = f"<think>{separate}</think>\n{content}" if separate else content
    think, outside = _split_think(content)
    if separate:
        think = "\n".join(part for part in (separate, think) if part)
    score_text = _last_block(outside, "score")
    answer = _last_block(outside, "answer")
    if score_text is None and answer is None and not separate and "</think>" not in content.lower():
        # an unclosed <think> swallowed everything: look inside it as a last resort
        score_text, answer = _last_block(content, "score"), _last_block(content, "answer")
    if score_text is None:
        score_text = _TAG.sub(" ", outside)
    semantic, quality = _read_scores(score_text)
    reasoning = think.strip() or _TAG.sub(" ", _strip_blocks(outside)).strip()
    return Critique(semantic, quality, reasoning, _clean_answer(answer), raw)


def parse_polish(text: str | None, instruction: str, reasoning_content: str | None = None) -> str:
    """The rewritten instruction from a polish reply, or the instruction itself when there is none."""
    return parse_critique(text, reasoning_content=reasoning_content).refined_prompt or instruction


def _split_think(text: str) -> tuple[str, str]:
    """(reasoning, everything else). The reasoning runs from the first `<think>` to the LAST `</think>`."""
    closes = [m for m in _TAG.finditer(text) if m.group(2).lower() == "think" and m.group(1)]
    if closes:
        end = closes[-1]
        opening = re.search(r"<\s*think\s*>", text[: end.start()], re.IGNORECASE)
        if opening:  # what stands before <think> is outside it too (tags in another order)
            return text[opening.end() : end.start()], text[: opening.start()] + text[end.end() :]
        return text[: end.start()], text[end.end() :]  # the prompt opened <think> (vLLM reasoning templates)
    opening = re.search(r"<\s*think\s*>", text, re.IGNORECASE)
    if opening:  # unclosed: reasoning runs until the first score/answer tag after it, if any
        rest = text[opening.end() :]
        nxt = re.search(r"<\s*(score|answer)\s*>", rest, re.IGNORECASE)
        if nxt:
            return rest[: nxt.start()], text[: opening.start()] + rest[nxt.start() :]
        return rest, text[: opening.start()]
    return "", text


def _last_block(text: str, tag: str) -> str | None:
    """Body of the last `<tag>…</tag>`; an unclosed last `<tag>` runs to the next tag or the end."""
    openings = [m for m in _TAG.finditer(text) if m.group(2).lower() == tag and not m.group(1)]
    if not openings:
        return None
    start = openings[-1].end()
    after = _TAG.search(text, start)
    return text[start : after.start()] if after else text[start:]


def _strip_blocks(text: str) -> str:
    return re.sub(r"<\s*(score|answer)\s*>.*?(<\s*/\s*\1\s*>|$)", " ", text, flags=re.IGNORECASE | re.DOTALL)


def _read_scores(text: str) -> tuple[float | None, float | None]:
    """(semantic, quality) from a score block: JSON, JSON-like or plain words ("semantic: 8, quality: 7")."""
    found = {}
    for key in ("semantic", "quality"):
        match = re.search(rf"""['"]?{key}\w*(?:\s+score)?['"]?\s*[:=]\s*{_SCORE_VALUE}""", text, re.IGNORECASE)
        if match:
            found[key] = _to_score(match.group(1))
    if not found:
        body = text.strip()
        try:
            loaded = json.loads(body)
        except (ValueError, TypeError, RecursionError):  # RecursionError: brackets nested thousands deep
            loaded = None
        if isinstance(loaded, list) and len(loaded) >= 2:
            return _to_score(str(loaded[0])), _to_score(str(loaded[1]))
        numbers = re.findall(r"-?\d+(?:\.\d+)?", body)
        if body.startswith(("[", "(")) and len(numbers) >= 2:
            return _to_score(numbers[0]), _to_score(numbers[1])
    return found.get("semantic"), found.get("quality")


def _to_score(token: str) -> float | None:
    """One 0-10 score from a value as written, or None when it is not exactly one readable number on that scale:
    a one-element list is its element, "8/10" is 8 (another scale, "4/5", is refused), units after the number are
    dropped ("8 points"); two numbers ("7-8", [7, 8]) or words that are not a number are refused."""
    token = token.strip()
    if token.startswith("["):
        items = [item for item in token.strip("[]").split(",") if item.strip()]
        return _to_score(items[0]) if len(items) == 1 else None
    token = token.strip("'\"").strip().lower()
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    if token in ("nan", "inf", "-inf", "infinity"):
        return None
    match = _LEADING_NUMBER.match(token)
    if match is None or re.search(r"\d", token[match.end() :]):
        return None
    if match.group(2) is not None and float(match.group(2)) != 10:
        return None
    return min(10.0, max(0.0, float(match.group(1))))


def _clean_answer(answer: str | None) -> str | None:
    if answer is None:
        return None
    text = answer.strip()
    for _ in range(2):
        text = _PREFIX.sub("", text).strip()
        if (
            len(text) >= 2
            and text[0] == text[-1]
            and text[0] in "\"'`“”"
            or len(text) >= 2
            and text[0] in '“"'
            and text[-1] in '”"'
        ):
            text = text[1:-1].strip()
    text = text.strip("` \n")
    return text or None
