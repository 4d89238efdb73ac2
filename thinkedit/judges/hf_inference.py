"""A vision-language model on Hugging Face Inference Providers as the judge (`--judge-model`,
`--judge-provider`, HF_TOKEN; `--judge-url` for a dedicated endpoint): the hf-inference thinker's client."""

from __future__ import annotations

from ..backend import BackendSpec
from ..config import Settings
from ..thinkers.hf_inference import HFInferenceThinker
from .viescore import ModelJudge


class HFInferenceJudge(ModelJudge):
    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        super().__init__(spec, settings, HFInferenceThinker(spec, settings, role="judge"))
