"""`attn_implementation: varlen`: packed examples attend only within themselves, with no flash-attn build.

Packing pays on a GPU only when attention skips the blocks between examples of a packed row
(FlashAttention-2's varlen kernel, Dao 2023). flash-attn must be compiled against the exact torch and
CUDA pair, which is the install step users most often fail at; PyTorch (>= 2.9) ships the same kind of
kernel as `torch.nn.attention.varlen.varlen_attn`. This module registers it with transformers'
AttentionInterface (the documented way to add a kernel), so tunepath's flat collator (training/data.py:
one row per batch plus `cu_seq_lens_q/k`) runs packed batches through it on CUDA. On CPU, or where the
kernel is missing, each example runs through sdpa on its own: the same arithmetic, still only each
example's own blocks. Batches without sequence boundaries (evaluation, generation, plain rows) run
through transformers' own sdpa function.
"""
from __future__ import annotations

import functools
import inspect
import itertools

import torch

NAME = "varlen"


@functools.lru_cache(maxsize=1)
def _kernel():
    """(varlen_attn, keyword arguments for a causal call) or None when this torch has no such kernel."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    params = inspect.signature(varlen_attn).parameters
    causal = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True} if "is_causal" in params else None
    if causal is None:
        return None
    return varlen_attn, causal, "enable_gqa" in params


def _per_example(q, k, v, cu: torch.Tensor, scale: float | None, dropout: float = 0.0) -> torch.Tensor:
    """(T, H, D) inputs -> (T, H, D): sdpa over each [cu[i], cu[i+1]) slice, causal, GQA as sdpa does it."""
    out = torch.empty_like(q)
    gqa = k.shape[1] != q.shape[1]
    bounds = cu.tolist()
    for a, b in itertools.pairwise(bounds):
        if b <= a:
            continue
        o = torch.nn.functional.scaled_dot_product_attention(
            q[a:b].transpose(0, 1), k[a:b].transpose(0, 1), v[a:b].transpose(0, 1), is_causal=True, scale=scale,
            enable_gqa=gqa, dropout_p=dropout)
        out[a:b] = o.transpose(0, 1)
    return out


def _boundaries(query, attention_mask, cu_seq_lens_q, position_ids) -> torch.Tensor | None:
    """Example boundaries over the flattened batch, or None when the batch is not packed.

    From cu_seq_lens (the flat collator, as for flash-attention) or else from position ids that restart
    at 0 inside a row with no padding mask (packed rows collated without them), so a packed batch never
    falls through to whole-row causal attention.
    """
    if cu_seq_lens_q is not None and query.shape[0] == 1:
        return cu_seq_lens_q.to(device=query.device, dtype=torch.int32)
    if attention_mask is not None or position_ids is None or query.shape[2] < 2:
        return None
    pos = position_ids.expand(query.shape[0], -1).reshape(-1)
    if pos.numel() != query.shape[0] * query.shape[2] or int((pos == 0).sum()) <= query.shape[0]:
        return None  # one example per row: ordinary causal attention
    starts = (pos == 0).nonzero().flatten()
    rows = torch.arange(0, pos.numel() + 1, query.shape[2], device=pos.device)
    return torch.unique(torch.cat([starts, rows])).to(torch.int32)


def varlen_attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                             cu_seq_lens_q=None, cu_seq_lens_k=None, max_length_q=None, max_length_k=None,
                             position_ids=None, **kwargs):
    """transformers attention function: (B, H, T, D) tensors in, ((B, T, H, D) output, None) out."""
    cu = _boundaries(query, attention_mask, cu_seq_lens_q, position_ids) if getattr(module, "is_causal", True) else None
    if cu is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        if attention_mask is not None and attention_mask.dim() == 2:  # padding mask from varlen_mask: add causality
            tq, tk = query.shape[2], key.shape[2]
            causal = torch.ones(tq, tk, dtype=torch.bool, device=query.device).tril(tk - tq)
            attention_mask = causal[None, None] & attention_mask[:, None, None, :].bool()
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      position_ids=position_ids, **kwargs)
    b, _, t, _ = query.shape
    q, k, v = (x.transpose(1, 2).reshape(b * t, x.shape[1], x.shape[3]) for x in (query, key, value))  # (B*T, H, D)
    if not module.training:
        dropout = 0.0
    kernel = _kernel() if q.is_cuda and dropout == 0 else None   # the fused kernel has no attention dropout
    if kernel is None:
        out = _per_example(q, k, v, cu, scaling, dropout)
    else:
        fn, causal, gqa_ok = kernel
        if k.shape[1] != q.shape[1] and not gqa_ok:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        extra = {"enable_gqa": True} if k.shape[1] != q.shape[1] else {}
        dtype = q.dtype if q.dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
        longest = int(max_length_q) if max_length_q is not None and b == 1 else int(cu.diff().max())
        out = fn(q.to(dtype), k.to(dtype), v.to(dtype), cu, cu, longest, longest, scale=scaling, **causal,
                 **extra).to(q.dtype)
    return out.reshape(b, t, out.shape[1], out.shape[2]), None


def varlen_mask(*, attention_mask=None, **_):
    """Mask function: none at all unless a batch has padding (then its 2-D padding mask, as flash-attention).

    Flat packed batches carry their boundaries as cu_seq_lens, so the T x T block-diagonal mask that
    sdpa would need is never built.
    """
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask


def register() -> None:
    """Make `attn_implementation="varlen"` known to transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_attention_forward)
    AttentionMaskInterface.register(NAME, varlen_mask)
