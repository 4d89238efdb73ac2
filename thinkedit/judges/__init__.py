"""Judges: one file each, one row each in `JUDGES`. A judge scores an edit for `thinkedit eval`.

A judge is anything with

    judge(source, edited, instruction, *, region=None) -> Verdict

It follows the VIEScore rubric that GEdit-Bench uses: a semantic-consistency question sees the source, the
edited image and the instruction and answers two 0–10 numbers (editing success, over-editing); a
perceptual-quality question sees only the edited image and answers two (naturalness, artifacts). Per
sample SC is the smaller of the first pair, PQ the smaller of the second, O = √(SC·PQ). With a mask `region` says
in words where the edit may change (`masks.in_words`), so a change outside it counts as over-editing. A judge is
independent of the thinker: its own backend, model, URL and key (`--judge*`, THINKEDIT_JUDGE_*). Classes
are built as `Class(spec, settings)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from ..backend import BackendSpec


@dataclass
class Verdict:
    """The judge's two answers: each a list of 0–10 numbers (a pair in our protocol; as many as the judge gave in
    VIEScore's), or None when no readable answer came back."""

    semantic: list[float] | None  # [editing success, over-editing]
    quality: list[float] | None  # [naturalness, artifacts]
    semantic_reply: str = ""  # the judge's raw answers, as they came
    quality_reply: str = ""
    asked: int = 2  # how many questions were put to the judge, retries included

    @property
    def sc(self) -> float | None:
        return min(self.semantic) if self.semantic else None

    @property
    def pq(self) -> float | None:
        return min(self.quality) if self.quality else None

    @property
    def o(self) -> float | None:
        return overall(self.sc, self.pq)


def overall(sc: float | None, pq: float | None) -> float | None:
    """VIEScore's overall score √(SC·PQ); None when either is unknown."""
    return None if sc is None or pq is None else math.sqrt(sc * pq)


class Judge(Protocol):
    spec: BackendSpec
    model: str | None

    def judge(
        self, source: Image.Image, edited: Image.Image, instruction: str, *, region: str | None = None
    ) -> Verdict: ...


_TRANSFORMERS = ("torch", "transformers", "torchvision")

JUDGES: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("classic", "thinkedit.judges.classic:ClassicJudge", "offline",
                    "Offline measurement: meaningful for what the classic editor can do (color, geometry, text)."),
        BackendSpec("openai", "thinkedit.judges.openai_chat:OpenAIJudge", "remote",
                    "Any OpenAI-compatible chat server: GPT-4.1 (the paper's judge), vLLM serving Qwen2.5-VL-72B, …",
                    packages=("openai",), needs_url=True),
        BackendSpec("qwen-vl", "thinkedit.judges.qwen_vl:QwenVLJudge", "local",
                    "Any Qwen2.5-VL / Qwen3-VL checkpoint in-process through transformers.",
                    model="Qwen/Qwen2.5-VL-7B-Instruct", packages=_TRANSFORMERS, size_gb=16.6),
        BackendSpec("hf-inference", "thinkedit.judges.hf_inference:HFInferenceJudge", "remote",
                    "A vision-language model on Hugging Face Inference Providers (needs HF_TOKEN).",
                    model="Qwen/Qwen2.5-VL-72B-Instruct", packages=("huggingface_hub",), inference_providers=True),
    ]
}  # fmt: skip
