"""Any Qwen2.5-VL / Qwen3-VL checkpoint as the judge, in-process through transformers (`--judge-model`).

The Qwen-VL thinker's generation in the judge role; a judge and a thinker on the same checkpoint share
one loaded model (and grade their own work: `thinkedit eval` warns).
"""

from __future__ import annotations

from ..thinkers.qwen_vl import QwenVLThinker
from .viescore import ModelJudge


class QwenVLJudge(ModelJudge):
    asker_class = QwenVLThinker
