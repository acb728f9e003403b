"""Will a model fit the GPU at these settings? The slot's own estimate (models.gguf.gpu_estimate:
weights and KV cache in proportion to the layers on the GPU, a fixed compute headroom), from the
library's cached header facts rather than a loaded engine, so the list can say
"fully on GPU", "N layers on CPU" or "does not fit" for every model without loading any.
"""
from __future__ import annotations

from models.gguf import CACHE_BYTES, GgufShape, gpu_estimate

MIB = 1 << 20


def llm_fit(facts: dict, file_bytes: int, projector_bytes: int, n_ctx: int, n_gpu_layers: int, cache_type: str,
            budget: int, headroom: int) -> dict:
    shape_facts = facts.get("shape") or {}
    layers = max(1, int(shape_facts.get("n_layers") or 1))
    shape = GgufShape(facts.get("architecture", ""), file_bytes, layers, int(shape_facts.get("n_embd") or 0),
                      int(shape_facts.get("n_head") or 1), int(shape_facts.get("n_head_kv") or 1),
                      int(shape_facts.get("head_dim_k") or 0), int(shape_facts.get("head_dim_v") or 0),
                      int(facts.get("context_length") or 0))
    per_element = CACHE_BYTES.get(cache_type, 2.0)
    kv = shape.kv_cache_bytes(n_ctx, per_element)
    full = gpu_estimate(shape, n_ctx, -1, cache_type, headroom).total + projector_bytes  # every layer on the GPU
    wanted = layers if n_gpu_layers < 0 else min(layers, n_gpu_layers)
    per_layer = (file_bytes + kv) / layers
    room = budget - headroom - projector_bytes
    on_gpu = max(0, min(wanted, int(room // per_layer))) if per_layer else wanted
    kv_per_token = shape.kv_cache_bytes(1, per_element)
    spare = budget - headroom - projector_bytes - file_bytes
    largest = int(spare // kv_per_token) if kv_per_token and spare > 0 else 0
    if shape.context_length:
        largest = min(largest, shape.context_length)
    if n_gpu_layers == 0:
        verdict = "cpu_only"
    elif on_gpu >= layers:
        verdict = "fully_on_gpu"
    elif on_gpu == 0:
        verdict = "does_not_fit"
    else:
        verdict = "partly_on_gpu"
    need = gpu_estimate(shape, n_ctx, n_gpu_layers, cache_type, headroom).total + (projector_bytes if n_gpu_layers else 0)
    return {"verdict": verdict, "estimate_mb": round(need / MIB), "full_mb": round(full / MIB),
            "budget_mb": round(budget / MIB), "layers": layers, "layers_on_gpu": on_gpu if n_gpu_layers else 0,
            "layers_on_cpu": layers - (on_gpu if n_gpu_layers else 0), "kv_cache_mb": round(kv / MIB),
            "largest_full_context": largest}


def image_fit(file_bytes: int, budget: int, headroom: int) -> dict:
    need = file_bytes + headroom
    return {"verdict": "fully_on_gpu" if need <= budget else "does_not_fit", "estimate_mb": round(need / MIB),
            "full_mb": round(need / MIB), "budget_mb": round(budget / MIB)}
