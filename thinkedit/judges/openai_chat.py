"""Any OpenAI-compatible chat server as the judge: GPT-4.1 (the paper's), vLLM serving Qwen2.5-VL-72B, others.

The OpenAI thinker's client in the judge role: `--judge-url` (the only place the key is sent),
`--judge-model` (default: the server's first model), the key from THINKEDIT_JUDGE_API_KEY or OPENAI_API_KEY.
"""

from __future__ import annotations

from ..thinkers.openai_chat import OpenAIThinker
from .viescore import ModelJudge


class OpenAIJudge(ModelJudge):
    asker_class = OpenAIThinker
