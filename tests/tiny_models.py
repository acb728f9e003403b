"""Tiny random-weight model files of real formats, for running the real libraries in tests.

No vision model ships in any package, so the vision tests pair the embedded SmolLM2 with a
generated LLaVA-style ("mlp" projector) mmproj whose projection width equals the LLM's
n_embd (576). Its answers are meaningless, as random weights must be; the load, encode and
generate path is the real one. A different width gives a projector that does not fit.

No Stable Diffusion checkpoint ships either. stable-diffusion.cpp builds fixed shapes per
architecture it detects from tensor names; the smallest it accepts is SDXS-512 (SD1 text
encoder, a tiny U-Net with no middle block, and the tiny autoencoder TAESD): 441 M
parameters, 0.88 GB in f16. make_tiny_sd_checkpoint builds it with random weights from
diffusers / transformers configs and saves one safetensors file in the diffusers naming
the library understands ("unet.", "te.text_model.", "vae.").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SMOLLM2_N_EMBD = 576


def make_tiny_mmproj(path: Path, n_embd_llm: int = SMOLLM2_N_EMBD, seed: int = 0) -> Path:
    from gguf import GGUFWriter

    rng = np.random.default_rng(seed)
    embd, heads, ff, layers, image_size, patch, hidden = 64, 4, 128, 2, 64, 16, 128
    n_patches = (image_size // patch) ** 2
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), "clip")
    writer.add_string("general.name", "tiny-random-llava-mmproj")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.use_gelu", True)
    for key, value in (("embedding_length", embd), ("feed_forward_length", ff), ("block_count", layers),
                       ("projection_dim", n_embd_llm), ("attention.head_count", heads),
                       ("image_size", image_size), ("patch_size", patch)):
        writer.add_uint32(f"clip.vision.{key}", value)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    writer.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])

    def random(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    def const(name: str, n: int, value: float) -> None:
        writer.add_tensor(name, np.full(n, value, dtype=np.float32))

    random("v.class_embd", embd)
    random("v.patch_embd.weight", embd, 3, patch, patch)
    random("v.position_embd.weight", n_patches + 1, embd)
    const("v.pre_ln.weight", embd, 1.0)
    const("v.pre_ln.bias", embd, 0.0)
    for i in range(layers):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            random(f"v.blk.{i}.{name}.weight", embd, embd)
            const(f"v.blk.{i}.{name}.bias", embd, 0.0)
        for norm in ("ln1", "ln2"):
            const(f"v.blk.{i}.{norm}.weight", embd, 1.0)
            const(f"v.blk.{i}.{norm}.bias", embd, 0.0)
        random(f"v.blk.{i}.ffn_up.weight", ff, embd)
        const(f"v.blk.{i}.ffn_up.bias", ff, 0.0)
        random(f"v.blk.{i}.ffn_down.weight", embd, ff)
        const(f"v.blk.{i}.ffn_down.bias", embd, 0.0)
    random("mm.0.weight", hidden, embd)
    const("mm.0.bias", hidden, 0.0)
    random("mm.2.weight", n_embd_llm, hidden)
    const("mm.2.bias", n_embd_llm, 0.0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def png_data_url(width: int = 80, height: int = 60, color=(200, 30, 30), fmt: str = "PNG", **save) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, fmt, **save)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def make_tiny_sd_checkpoint(path: Path, seed: int = 0) -> Path:
    import torch
    from diffusers import AutoencoderTiny, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(  # SDXS-512: 3 levels, one res block each, attention at the two deeper
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1, mid_block_type=None,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(320, 640, 1280), cross_attention_dim=768, attention_head_dim=8)
    text_encoder = CLIPTextModel(CLIPTextConfig(  # CLIP ViT-L/14's text tower, as SD1 uses
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768))
    vae = AutoencoderTiny()  # TAESD
    tensors = {}
    for prefix, module in (("unet.", unet), ("te.text_model.", text_encoder), ("vae.", vae)):
        for name, tensor in module.state_dict().items():
            tensors[prefix + name] = tensor.to(torch.float16).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    save_file(tensors, str(partial))
    partial.replace(path)  # a run stopped mid-write leaves no half file under the real name
    return path


def split_gguf(source: Path, folder: Path, stem: str, parts: int = 2) -> list[Path]:
    """The GGUF rewritten as `parts` split files (`stem-00001-of-0000N.gguf`), as llama.cpp's
    gguf-split writes them: metadata in the first, tensors shared out."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    reader = GGUFReader(str(source))
    arch = str(reader.fields["general.architecture"].contents())
    per_part = -(-len(reader.tensors) // parts)
    folder.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(folder / f"{stem}.gguf"), arch, split_max_tensors=per_part)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "split.no", "split.count",
                                                "split.tensors.count"):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)  # numpy shape: byte rows
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sorted(folder.glob(f"{stem}-*-of-*.gguf"))


def random_twin(source: Path, target: Path, seed: int = 0) -> Path:
    """The same architecture, shapes and quantisation with meaningless weights: every tensor's
    quantisation blocks (or plain values) shuffled, so each block stays a valid number while the
    model knows nothing. A baseline a benchmark must tell apart from the real model."""
    from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFValueType, GGUFWriter

    rng = np.random.default_rng(seed)
    reader = GGUFReader(str(source))
    arch = str(reader.fields["general.architecture"].contents())
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(target), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        kind = field.types[0]
        writer.add_key_value(name, field.contents(), kind, sub_type=field.types[-1] if kind == GGUFValueType.ARRAY else None)
    for tensor in reader.tensors:
        data = np.array(tensor.data)
        if "norm" not in tensor.name:  # norms stay: a model of noise, not of NaNs
            block, size = GGML_QUANT_SIZES[tensor.tensor_type]
            flat = data.reshape(-1)
            unit = size if block > 1 else 1  # bytes of one quantisation block, or one value
            blocks = flat.reshape(-1, unit) if block > 1 else flat.reshape(-1, 1)
            data = blocks[rng.permutation(len(blocks))].reshape(data.shape)
        writer.add_tensor(tensor.name, data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target
