"""A vision-language model on Hugging Face Inference Providers as the judge (`--judge-model`,
`--judge-provider`, HF_TOKEN; `--judge-url` for a dedicated endpoint): the hf-inference thinker's client."""

from __future__ import annotations

from ..thinkers.hf_inference import HFInferenceThinker
from .viescore import ModelJudge


class HFInferenceJudge(ModelJudge):
    asker_class = HFInferenceThinker
