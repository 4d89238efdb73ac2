"""Tiny random-weight diffusers editing pipelines, built offline and saved with `save_pretrained`.

Every component of the real pipeline is present — denoiser, VAE, text encoders, scheduler, tokenizers
and processors — at toy sizes, so that `from_pretrained(folder)` runs the real loading and denoising
code. The VAEs downsample 8× like the real ones (Qwen-Image-Edit and LongCat resize their input to about
1024² whatever the request, so a 1× VAE would make their tiny runs huge). Tokenizers are a byte-level
BPE trained here (`tiny_qwen_vl.build_tokenizer`); the Qwen-VL text encoders and processors reuse the
thinker tests' tiny Qwen2.5-VL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tiny_qwen_vl import build_processor, build_tokenizer, qwen2_5_vl_config

TEXT_DIM = 32  # hidden size of every tiny text encoder


def tokenizer(max_length: int):
    tok = build_tokenizer()
    tok.model_max_length = max_length  # CLIP pads to its 77 positions; the others to their prompt length
    return tok


def vae_kl(latent_channels: int, flux2: bool = False):
    """An 8× AutoencoderKL (four blocks), or FLUX.2's variant with its 2×2 patch batch-norm."""
    from diffusers import AutoencoderKL, AutoencoderKLFlux2

    blocks = {
        "block_out_channels": (8, 8, 8, 8),
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "latent_channels": latent_channels,
        "sample_size": 64,
        "mid_block_add_attention": False,
    }
    if flux2:
        return AutoencoderKLFlux2(**blocks, use_quant_conv=False, use_post_quant_conv=False)
    return AutoencoderKL(
        **blocks,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        shift_factor=0.1,
        scaling_factor=1.2,
    )


def clip_text_encoder(tok, dim: int = TEXT_DIM):
    from transformers import CLIPTextConfig, CLIPTextModel

    ids = {
        "bos_token_id": tok.convert_tokens_to_ids("<|im_start|>"),
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=dim,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=dim,
        max_position_embeddings=77,
        **ids,
    )
    return CLIPTextModel(config).eval()


def qwen_vl_text_encoder(dim: int = TEXT_DIM):
    """(Qwen2.5-VL text encoder, tokenizer, processor) as the Qwen-Image and LongCat pipelines use them.

    At any width the attention stays consistent: 8-wide heads when tiny, else Qwen2.5-VL-7B's 128-wide heads
    (3584 = 28 heads × 128, 4 key/value heads), and the multimodal rotary sections split each head's half in
    Qwen's proportions (1 : 1.5 : 1.5, [16, 24, 24] at 128).
    """
    from transformers import Qwen2_5_VLForConditionalGeneration

    tok = tokenizer(512)
    config = qwen2_5_vl_config(tok)
    head_dim = 128 if dim % 128 == 0 else 8
    if dim % head_dim:
        raise ValueError(f"a Qwen2.5-VL text width must be a multiple of 8, not {dim}")
    heads = dim // head_dim
    half, spatial = head_dim // 2, head_dim * 3 // 16
    text = config.text_config
    text.hidden_size = config.vision_config.out_hidden_size = dim
    text.num_attention_heads, text.num_key_value_heads = heads, math.gcd(heads, 4 if head_dim == 128 else 2)
    text.rope_parameters["mrope_section"] = [half - 2 * spatial, spatial, spatial]
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    return model, tok, build_processor("qwen2_5_vl", tok)


def flux_kontext(text_dim: int = TEXT_DIM, pooled_dim: int = TEXT_DIM):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    tok = tokenizer(77)
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=text_dim, d_kv=8, d_ff=37, num_layers=1, num_heads=4))
    transformer = FluxTransformer2DModel(
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_dim,
        pooled_projection_dim=pooled_dim,
        guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    )
    t5_tok = tokenizer(512)
    return FluxKontextPipeline(
        FlowMatchEulerDiscreteScheduler(),
        vae_kl(4),
        clip_text_encoder(tok, pooled_dim),
        tok,
        t5.eval(),
        t5_tok,
        transformer,
    )


def qwen_image_edit(original: bool = False, text_dim: int = TEXT_DIM):
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )

    text_encoder, tok, processor = qwen_vl_text_encoder(text_dim)
    vae = AutoencoderKLQwenImage(
        base_dim=4,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_dim,
        axes_dims_rope=(8, 4, 4),
    )
    cls = QwenImageEditPipeline if original else QwenImageEditPlusPipeline
    return cls(FlowMatchEulerDiscreteScheduler(), vae, text_encoder, tok, processor, transformer)


def longcat_image_edit(text_dim: int = TEXT_DIM):
    from diffusers import FlowMatchEulerDiscreteScheduler, LongCatImageEditPipeline, LongCatImageTransformer2DModel

    text_encoder, tok, processor = qwen_vl_text_encoder(text_dim)
    transformer = LongCatImageTransformer2DModel(
        in_channels=64,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_dim,
        pooled_projection_dim=text_dim,
        axes_dims_rope=[4, 4, 8],
    )
    # LongCat's latents always have 16 channels (4×4 = 64 packed into the transformer).
    return LongCatImageEditPipeline(
        FlowMatchEulerDiscreteScheduler(), vae_kl(16), text_encoder, tok, processor, transformer
    )


def safety_checker():
    """(StableDiffusionSafetyChecker, CLIPImageProcessor) at toy sizes, as a Stable Diffusion checkpoint ships them."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    tower = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config=tower, vision_config={**tower, "image_size": 32, "patch_size": 16}, projection_dim=8
    )
    return StableDiffusionSafetyChecker(config).eval(), CLIPImageProcessor(size=32, crop_size=32)


def instruct_pix2pix(text_dim: int = TEXT_DIM, with_safety_checker: bool = False):
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel

    tok = tokenizer(77)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=8,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        attention_head_dim=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_dim,
    )
    scheduler = EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    checker, extractor = safety_checker() if with_safety_checker else (None, None)
    return StableDiffusionInstructPix2PixPipeline(
        vae_kl(4),
        clip_text_encoder(tok, text_dim),
        tok,
        unet,
        scheduler,
        safety_checker=checker,
        feature_extractor=extractor,
        requires_safety_checker=with_safety_checker,
    )


def flux2_transformer(text_dim: int, guidance_embeds: bool):
    """FLUX.2's denoiser at toy size: one double and one single block over the stacked text states."""
    from diffusers import Flux2Transformer2DModel

    return Flux2Transformer2DModel(
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * text_dim,
        guidance_embeds=guidance_embeds,
        axes_dims_rope=(4, 4, 4, 4),
    )


def flux2_klein(text_dim: int = 16):
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = tokenizer(512)
    # The pipeline reads the hidden states of layers 9, 18 and 27 and stacks them: 28 layers, 3× the width.
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tok),
            hidden_size=text_dim,
            intermediate_size=16,
            num_hidden_layers=28,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=1024,
        )
    )
    transformer = flux2_transformer(text_dim, guidance_embeds=False)
    return Flux2KleinPipeline(
        FlowMatchEulerDiscreteScheduler(),
        vae_kl(1, flux2=True),
        text_encoder.eval(),
        tok,
        transformer,
        is_distilled=True,
    )


def flux2_dev(text_dim: int = 16):
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2Pipeline
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    tok = tokenizer(512)
    # The pipeline stacks the hidden states of layers 10, 20 and 30 of its Mistral-3 text encoder: 30 layers.
    text = {
        "vocab_size": len(tok),
        "hidden_size": text_dim,
        "intermediate_size": 16,
        "num_hidden_layers": 30,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 1024,
    }
    vision = {
        "hidden_size": 16,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "head_dim": 8,
        "image_size": 32,
        "patch_size": 16,
    }
    text_encoder = Mistral3ForConditionalGeneration(Mistral3Config(text_config=text, vision_config=vision))
    transformer = flux2_transformer(text_dim, guidance_embeds=True)
    return Flux2Pipeline(
        FlowMatchEulerDiscreteScheduler(), vae_kl(1, flux2=True), text_encoder.eval(), tok, transformer
    )


BUILDERS = {
    "flux-kontext": flux_kontext,
    "qwen-image-edit": qwen_image_edit,
    "qwen-image-edit-original": lambda **dims: qwen_image_edit(original=True, **dims),
    "longcat-image-edit": longcat_image_edit,
    "instruct-pix2pix": instruct_pix2pix,
    "instruct-pix2pix-checked": lambda **dims: instruct_pix2pix(with_safety_checker=True, **dims),
    "flux2-klein": flux2_klein,
    "flux2-dev": flux2_dev,
}


def build_tiny_pipeline(name: str, folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny pipeline `name` (a key of BUILDERS) with random weights and save it into `folder`."""
    torch.manual_seed(seed)
    pipe = BUILDERS[name]()
    pipe.save_pretrained(folder)
    return Path(folder)


def random_lora(
    pipe, folder: str | Path, weight_name: str, rank: int = 4, seed: int = 0, published: bool = False
) -> Path:
    """A LoRA of random weights (peft) on `pipe.transformer`'s attention projections, saved into `folder` the way
    `load_lora_weights(folder, weight_name=...)` reads it; the transformer is left as it was.

    `published`: in the key format the Lightning distillations are published in (lightx2v's Qwen-Image-Lightning:
    `<layer>.lora_down.weight`, `<layer>.lora_up.weight` and `<layer>.alpha`, no `transformer.` prefix), which
    diffusers converts as it loads."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    targets = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"]
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False)
    pipe.transformer.add_adapter(config, adapter_name="random")
    layers = {
        name: tensor.detach().to("cpu", torch.bfloat16 if published else tensor.dtype).contiguous()
        for name, tensor in get_peft_model_state_dict(pipe.transformer, adapter_name="random").items()
    }
    pipe.transformer.unload_lora()
    if not published:
        type(pipe).save_lora_weights(folder, transformer_lora_layers=layers, weight_name=weight_name)
        return Path(folder)
    renamed = {}
    for name, tensor in layers.items():
        layer = name.removesuffix(".lora_A.weight").removesuffix(".lora_B.weight")
        renamed[name.replace(".lora_A.", ".lora_down.").replace(".lora_B.", ".lora_up.")] = tensor
        renamed[f"{layer}.alpha"] = torch.tensor(float(rank), dtype=torch.bfloat16)
    Path(folder).mkdir(parents=True, exist_ok=True)
    save_file(renamed, str(Path(folder) / weight_name))
    return Path(folder)


@contextmanager
def denoiser_layer_calls(pipe) -> Iterator[list[int]]:
    """Per call of the denoiser (transformer or UNet), how many linear layers of its blocks ran: a step a cache
    predicts runs fewer."""
    model = getattr(pipe, "transformer", None) or pipe.unet
    passes, count = [], [0]
    layers = [m for name, m in model.named_modules() if "blocks." in name and isinstance(m, torch.nn.Linear)]

    def layer(*_) -> None:
        count[0] += 1

    def denoiser_pass(*_) -> None:
        passes.append(count[0])
        count[0] = 0

    handles = [module.register_forward_hook(layer) for module in layers] + [model.register_forward_hook(denoiser_pass)]
    try:
        yield passes
    finally:
        for handle in handles:
            handle.remove()
