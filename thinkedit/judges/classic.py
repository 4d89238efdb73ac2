"""The offline judge: the classic critic's measurements, read as the VIEScore questions.

Editing success is how fully the measured parts of the instruction were done, over-editing how little
changed that was not asked for, and both quality numbers are the critic's quality (clipping, banding, lost
or added detail). Meaningful for what the classic editor can do; anything generative scores low.
"""

from __future__ import annotations

import json

from PIL import Image

from ..backend import BackendSpec
from ..config import Settings
from ..errors import BadInput
from ..thinkers.classic import assess
from . import Verdict


class ClassicJudge:
    model = None

    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        if settings is not None and settings.judge_protocol != "ours":
            raise BadInput(
                f"--judge-protocol {settings.judge_protocol} asks a model the official questions; the classic judge "
                "measures instead: choose --judge openai, qwen-vl or hf-inference."
            )
        self.spec = spec
        self.settings = settings

    def judge(
        self,
        source: Image.Image,
        edited: Image.Image,
        instruction: str,
        *,
        region: str | None = None,
        mask: Image.Image | None = None,
    ) -> Verdict:
        measured = assess(source, edited, instruction, instruction, mask)
        semantic = [round(10 * measured.success, 1), round(10 * measured.preservation, 1)]
        quality = [measured.quality, measured.quality]
        findings = ([region] if region else []) + [p.finding for p in measured.parts] + measured.kept
        return Verdict(semantic, quality, _reply(semantic, findings), _reply(quality, measured.flaws or ["no flaws"]))


def _reply(scores: list[float], findings: list[str]) -> str:
    return json.dumps({"score": scores, "reasoning": "; ".join(findings)}, ensure_ascii=False)
