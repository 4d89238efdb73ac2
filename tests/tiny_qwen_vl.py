"""Tiny random-weight Qwen3-VL and Qwen2.5-VL checkpoints, built offline for tests and the CPU GPU-check.

Each folder holds what `AutoModelForImageTextToText.from_pretrained` and `AutoProcessor.from_pretrained`
read from a real checkpoint: config, safetensors weights, a byte-level BPE tokenizer trained here with
the Qwen special tokens, the real Qwen-VL image and video processors with small settings, and a chat
template that writes each image as `<|vision_start|><|image_pad|><|vision_end|>`.

The special tokens' output rows are zeroed, so greedy decoding never stops early on `<|im_end|>`: the
random model always babbles for exactly `max_new_tokens` tokens, which the tests rely on.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from thinkedit.critique import load_template

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen's template, reduced to what the thinker sends: user turns of images and text.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Qwen3 "thinking" checkpoints open the reasoning block in the prompt itself.
THINKING_CHAT_TEMPLATE = CHAT_TEMPLATE.replace("assistant\n{% endif %}", "assistant\n<think>\n{% endif %}")

CORPUS_EXTRA = [
    "<think>The red square became blue, the sky is unchanged.</think>",
    '<score>{"semantic": 7, "quality": 8}</score>',
    "<answer>Make the red square blue and keep the rest unchanged.</answer>",
    "Make the sky orange. Add a small cat on the grass. Remove the blue disc. Turn the photo black and white.",
]


def build_tokenizer(vocab_size: int = 600, thinking: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the thinker's own templates, with the Qwen special tokens first."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [load_template("critique"), load_template("polish"), *CORPUS_EXTRA]
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=THINKING_CHAT_TEMPLATE if thinking else CHAT_TEMPLATE,
    )


def _token_ids(tokenizer) -> dict[str, int]:
    ids = {
        name: tokenizer.convert_tokens_to_ids(f"<|{name}|>")
        for name in ("vision_start", "vision_end", "image_pad", "video_pad")
    }
    return {
        "vision_start_token_id": ids["vision_start"],
        "vision_end_token_id": ids["vision_end"],
        "image_token_id": ids["image_pad"],
        "video_token_id": ids["video_pad"],
    }


def _text_config(tokenizer, **extra) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|im_start|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **extra,
    }


def qwen3_vl_config(tokenizer):
    from transformers import Qwen3VLConfig

    text = _text_config(
        tokenizer,
        head_dim=16,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [4, 2, 2],
            "mrope_interleaved": True,
        },
    )
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_heads": 4,
        "out_hidden_size": 32,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0, 1],
    }
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **_token_ids(tokenizer))


def qwen2_5_vl_config(tokenizer):
    from transformers import Qwen2_5_VLConfig

    text = _text_config(
        tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]}
    )
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_heads": 4,
        "out_hidden_size": 32,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 56,
        "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **_token_ids(tokenizer))


def build_processor(family: str, tokenizer, max_side: int = 96):
    """The real Qwen-VL processor for `family` with a small pixel budget: a few vision tokens per image."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    patch = 16 if family == "qwen3_vl" else 14
    pixels = {"min_pixels": (2 * patch) ** 2, "max_pixels": max_side * max_side}
    image_processor = Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2, **pixels)
    if family == "qwen3_vl":
        video = Qwen3VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2)
        return Qwen3VLProcessor(image_processor, tokenizer, video, chat_template=tokenizer.chat_template)
    video = Qwen2VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2)
    return Qwen2_5_VLProcessor(image_processor, tokenizer, video, chat_template=tokenizer.chat_template)


def silence_special_tokens(model, tokenizer) -> None:
    """Zero the output rows of every special token: greedy decoding then never picks one."""
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)] = 0.0


def build_tiny_qwen_vl(folder: str | Path, family: str = "qwen3_vl", *, thinking: bool = False, seed: int = 0) -> Path:
    """Write a tiny random `family` ("qwen3_vl" or "qwen2_5_vl") checkpoint to `folder` and return it."""
    from transformers import AutoModelForImageTextToText

    folder = Path(folder)
    tokenizer = build_tokenizer(thinking=thinking)
    config = qwen3_vl_config(tokenizer) if family == "qwen3_vl" else qwen2_5_vl_config(tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config).eval()
    silence_special_tokens(model, tokenizer)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    build_processor(family, tokenizer).save_pretrained(folder)
    return folder
