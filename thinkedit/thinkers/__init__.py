"""Thinkers: one file each, one row each in `THINKERS`.

The thinker protocol and the row's fields are in thinkedit/backend.py.
"""

from __future__ import annotations

from ..backend import BackendSpec

_TRANSFORMERS = ("torch", "transformers", "torchvision")
# The critique template the EditThinker authors serve their checkpoints with, fetched at first use (_prompted.py).
_AUTHORS = {
    "template_url": "https://raw.githubusercontent.com/appletea233/EditThinker/"
    "803d1a7980de11db8f39c84cd27f954bd9745d5a/inference/prompt_template.txt"
}

THINKERS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("classic", "thinkedit.thinkers.classic:ClassicThinker", "offline",
                    "Offline CPU critic that measures the edit (color, geometry, preservation, quality)."),
        BackendSpec("editthinker", "thinkedit.thinkers.qwen_vl:QwenVLThinker", "local",
                    "EditThinker-8B (Qwen3-VL-8B) in-process through transformers, streamed.",
                    model="appletea2333/EditThinker-8B", packages=_TRANSFORMERS, size_gb=17.5, tokens_per_second=30.0,
                    options=_AUTHORS),
        BackendSpec("editthinker-kontext", "thinkedit.thinkers.qwen_vl:QwenVLThinker", "local",
                    "The authors' EditThinker-8B checkpoint for FLUX.1 Kontext [dev] (pair it with flux-kontext).",
                    model="appletea2333/EditThinker8B-Flux.1-Kontext-Dev", packages=_TRANSFORMERS, size_gb=17.5,
                    tokens_per_second=30.0, options=_AUTHORS),
        BackendSpec("qwen-vl", "thinkedit.thinkers.qwen_vl:QwenVLThinker", "local",
                    "Any Qwen2.5-VL / Qwen3-VL checkpoint as a zero-shot thinker (default the small 2B).",
                    model="Qwen/Qwen3-VL-2B-Instruct", packages=_TRANSFORMERS, size_gb=4.5, tokens_per_second=60.0),
        BackendSpec("openai", "thinkedit.thinkers.openai_chat:OpenAIThinker", "remote",
                    "Any OpenAI-compatible chat server (vLLM serving EditThinker-8B, GPT-4.1, …).",
                    packages=("openai",), needs_url=True),
        BackendSpec("hf-inference", "thinkedit.thinkers.hf_inference:HFInferenceThinker", "remote",
                    "A vision-language model on Hugging Face Inference Providers (needs HF_TOKEN).",
                    model="Qwen/Qwen2.5-VL-72B-Instruct", packages=("huggingface_hub",), inference_providers=True),
    ]
}  # fmt: skip
