"""Exact parameter counts from a Hugging Face `config.json`, without torch.

Calculators that guess from `hidden_size` alone miscount tied embeddings, GQA, Gemma's
free-standing `head_dim`, biases and MoE experts. Here every architecture is described as the
list of its weight tensors, mirroring the module tree transformers builds (modeling_<type>.py in
transformers 5), so the total equals `model.num_parameters()` (tests build every catalog config
on the meta device and compare) and the linear modules are the ones peft can target.
"""
from __future__ import annotations

from functools import cached_property
from dataclasses import dataclass

from advisor.errors import UserError

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi", "phi3", "gpt2", "gpt_neox",
             "falcon", "mixtral", "qwen3_moe")

# Legacy / remote-code model types and the key aliases they use, as published in older revisions of
# the models' config.json on the Hugging Face hub: phi-2's `phi-msft` and `mixformer-sequential`,
# falcon's `RefinedWebModel`/`RefinedWeb`.
_TYPE_ALIASES = {"phi-msft": "phi", "mixformer-sequential": "phi", "RefinedWebModel": "falcon",
                 "RefinedWeb": "falcon"}
_KEY_ALIASES = {"n_embd": "hidden_size", "n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
                "n_inner": "intermediate_size", "n_head_kv": "num_key_value_heads",
                "n_positions": "max_position_embeddings", "layer_norm_epsilon": "layer_norm_eps"}


# Far beyond any model built (the largest published, Switch-C, has 1.6e12 parameters: Fedus et al. 2021,
# 'Switch Transformers', arXiv:2101.03961), low enough that memory and FLOP arithmetic stays finite.
MAX_PARAMS = 1e15
MAX_PARAMS_WHY = "over 600x the largest published model (Switch-C, 1.6 trillion: Fedus et al. 2021)"


@dataclass(frozen=True)
class Linear:
    """One linear (or GPT-2 Conv1D) module inside a decoder layer, by its peft-targetable name."""

    name: str                 # leaf module name, as peft's target_modules matches it
    in_features: int
    out_features: int
    bias: bool
    count: int = 1            # copies per layer (MoE experts)
    expert: bool = False      # only `experts_per_token` of `count` copies run per token
    targetable: bool = True   # an nn.Linear/Conv1D module peft can wrap (transformers 5 fuses MoE experts)
    scope: str = ""           # parent module ("attn"/"mlp") where a leaf name repeats (GPT-2's c_proj)


@dataclass(frozen=True)
class Architecture:
    """What the estimator needs to know about a decoder-only transformer (plain data: the
    advisor's import time matters: `tunepath recommend` must answer in a blink, bench/cli_latency.py)."""

    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    tied_embeddings: bool
    layer_linears: tuple[Linear, ...]
    layer_norm_params: int                  # norm weights (+biases) per layer, incl. q/k norms
    final_norm_params: int
    max_position_embeddings: int | None = None
    position_embeddings: int = 0            # learned absolute positions (GPT-2)
    lm_head_bias: bool = False
    num_experts: int = 0
    experts_per_token: int = 0

    # --- counts -------------------------------------------------------------------------
    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size + self.position_embeddings * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Output projection; 0 extra weights when tied to the input embedding (bias still counts)."""
        weight = 0 if self.tied_embeddings else self.vocab_size * self.hidden_size
        return weight + (self.vocab_size if self.lm_head_bias else 0)

    def _linear_params(self, active: bool) -> int:
        total = 0
        for lin in self.layer_linears:
            copies = self.experts_per_token if (active and lin.expert) else lin.count
            total += copies * (lin.in_features * lin.out_features + (lin.out_features if lin.bias else 0))
        return total

    @property
    def params_per_layer(self) -> int:
        return self._linear_params(active=False) + self.layer_norm_params

    @cached_property       # immutable: computed once (the setup search asks thousands of times)
    def total_params(self) -> int:
        """Equals transformers' `model.num_parameters()` (tied weights counted once)."""
        return (self.embedding_params + self.num_layers * self.params_per_layer
                + self.final_norm_params + self.lm_head_params)

    @cached_property
    def active_params(self) -> int:
        """Parameters used per token: MoE runs `experts_per_token` experts (Mixtral paper, 2024)."""
        per_layer = self._linear_params(active=True) + self.layer_norm_params
        return (self.embedding_params + self.num_layers * per_layer + self.final_norm_params
                + self.lm_head_params)

    @property
    def input_embedding_params(self) -> int:
        """Lookup-only parameters: they cost no matmul FLOPs (see estimate.training_flops)."""
        return self.embedding_params

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_names(self) -> list[str]:
        return sorted({lin.name for lin in self.layer_linears if lin.targetable})


def _get(cfg: dict, key: str, default=None):
    v = cfg.get(key)
    return default if v is None else v


def _require(cfg: dict, key: str, where: str) -> int:
    v = cfg.get(key)
    if v is None:
        raise UserError(f"{where}: config.json has no '{key}' (needed to count parameters)")
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise UserError(f"{where}: '{key}' must be a positive integer, got {v!r}")
    return v


def optional_int(cfg: dict, key: str, default, where: str):
    """A size the config may leave out (then `default`); when given, a positive integer like a required one
    (a string, 0 or inf there was an internal error deep in the estimator)."""
    return default if cfg.get(key) is None else _require(cfg, key, where)


def _kv_heads(cfg: dict, key: str, heads: int, where: str) -> int:
    """Key/value heads (GQA): each serves heads / kv query heads, so kv divides the head count."""
    kv = optional_int(cfg, key, heads, where)
    if heads % kv:
        raise UserError(f"{where}: '{key}' ({kv}) must divide 'num_attention_heads' ({heads})")
    return kv


def _core_dims(cfg: dict, where: str) -> tuple[int, int, int, int]:
    """hidden_size, num_hidden_layers, num_attention_heads, vocab_size: every family needs them."""
    return tuple(_require(cfg, k, where) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                   "vocab_size"))


def normalize_config(raw: dict) -> dict:
    """Map legacy key names onto the current transformers ones; returns a new dict."""
    cfg = dict(raw)
    for old, new in _KEY_ALIASES.items():
        if old in cfg and cfg.get(new) is None:
            cfg[new] = cfg[old]
    mt = cfg.get("model_type")
    cfg["model_type"] = _TYPE_ALIASES.get(mt, mt)
    if mt in ("RefinedWebModel", "RefinedWeb") and cfg.get("multi_query") and cfg.get("num_kv_heads") is None:
        cfg["num_kv_heads"] = 1
    if mt in ("phi-msft", "mixformer-sequential") and cfg.get("intermediate_size") is None and cfg.get("hidden_size"):
        cfg["intermediate_size"] = 4 * cfg["hidden_size"]    # phi-msft: n_inner=None means 4*n_embd
    return cfg


def from_config(raw: dict, where: str = "config.json") -> Architecture:
    """Build an Architecture from an HF config dict. Unknown model types are an error, never a guess."""
    cfg = normalize_config(raw)
    mt = cfg.get("model_type")
    if mt is None:
        raise UserError(f"{where}: config.json has no 'model_type' (one of {', '.join(SUPPORTED)})")
    if mt not in SUPPORTED:
        raise UserError(f"{where}: model_type {mt!r} is not supported for exact counts; "
                        f"supported: {', '.join(SUPPORTED)} (legacy: {', '.join(_TYPE_ALIASES)})")
    arch = _BUILDERS[mt](cfg, where)
    if arch.total_params > MAX_PARAMS:
        raise UserError(f"{where}: these sizes make {arch.total_params:.3g} parameters, more than the upper bound "
                        f"{MAX_PARAMS:.0e}, {MAX_PARAMS_WHY}; check hidden_size, num_hidden_layers and vocab_size")
    return arch


# --- per-family module trees (transformers 5 modeling files) ---------------------------------

def _llama_like(cfg: dict, where: str) -> Architecture:
    """Llama, Mistral, Qwen2/3, Qwen3-MoE, Gemma/Gemma2, Mixtral, Phi3: RMSNorm, gated MLP, GQA."""
    mt = cfg["model_type"]
    h, L, nh, V = _core_dims(cfg, where)
    # Qwen3-MoE's layers run experts of moe_intermediate_size; its intermediate_size is for dense layers only
    inter = _require(cfg, "moe_intermediate_size" if mt == "qwen3_moe" else "intermediate_size", where)
    kv = _kv_heads(cfg, "num_key_value_heads", nh, where)
    hd = optional_int(cfg, "head_dim", h // nh, where)
    # Qwen2 has biases on q/k/v only (modeling_qwen2.py); Llama-family exposes attention_bias.
    qkv_bias = True if mt == "qwen2" else bool(_get(cfg, "attention_bias", False))
    o_bias = False if mt == "qwen2" else bool(_get(cfg, "attention_bias", False))
    mlp_bias = bool(_get(cfg, "mlp_bias", False))
    if mt == "phi3":
        attn = (Linear(name="qkv_proj", in_features=h, out_features=(nh + 2 * kv) * hd, bias=False),
                Linear(name="o_proj", in_features=nh * hd, out_features=h, bias=False))
    else:
        attn = (Linear(name="q_proj", in_features=h, out_features=nh * hd, bias=qkv_bias),
                Linear(name="k_proj", in_features=h, out_features=kv * hd, bias=qkv_bias),
                Linear(name="v_proj", in_features=h, out_features=kv * hd, bias=qkv_bias),
                Linear(name="o_proj", in_features=nh * hd, out_features=h, bias=o_bias))
    experts = 0
    top_k = 0
    if mt == "mixtral":
        # Router `gate` (h -> E, no bias) + E experts of w1/w3 (h->I), w2 (I->h). transformers 5 stores
        # them as fused 3-D parameters, not nn.Linear, so peft's target_modules cannot reach them.
        experts = _require(cfg, "num_local_experts", where)
        top_k = _require(cfg, "num_experts_per_tok", where)
        if top_k > experts:
            raise UserError(f"{where}: 'num_experts_per_tok' ({top_k}) exceeds 'num_local_experts' ({experts})")
        mlp = (Linear(name="gate", in_features=h, out_features=experts, bias=False, targetable=False),
               Linear(name="w1", in_features=h, out_features=inter, bias=False, count=experts, expert=True,
                      targetable=False),
               Linear(name="w3", in_features=h, out_features=inter, bias=False, count=experts, expert=True,
                      targetable=False),
               Linear(name="w2", in_features=inter, out_features=h, bias=False, count=experts, expert=True,
                      targetable=False))
    elif mt == "qwen3_moe":
        # modeling_qwen3_moe.py: router `gate` (an E x h parameter) + E experts stored as fused 3-D parameters
        # gate_up_proj (E, 2I, h) and down_proj (E, h, I) - none of them an nn.Linear peft can wrap. A layer is
        # sparse unless listed in mlp_only_layers or off the decoder_sparse_step; those run a dense MLP of
        # intermediate_size instead, which this per-layer description cannot mix in, so they are refused.
        experts = _require(cfg, "num_experts", where)
        top_k = _require(cfg, "num_experts_per_tok", where)
        if top_k > experts:
            raise UserError(f"{where}: 'num_experts_per_tok' ({top_k}) exceeds 'num_experts' ({experts})")
        if optional_int(cfg, "decoder_sparse_step", 1, where) != 1 or cfg.get("mlp_only_layers"):
            raise UserError(f"{where}: qwen3_moe with dense layers (decoder_sparse_step > 1 or mlp_only_layers) "
                            "is not supported for exact counts; only configs whose every layer is sparse")
        mlp = (Linear(name="gate", in_features=h, out_features=experts, bias=False, targetable=False),
               Linear(name="gate_up_proj", in_features=h, out_features=2 * inter, bias=False, count=experts,
                      expert=True, targetable=False),
               Linear(name="down_proj", in_features=inter, out_features=h, bias=False, count=experts, expert=True,
                      targetable=False))
    elif mt == "phi3":
        mlp = (Linear(name="gate_up_proj", in_features=h, out_features=2 * inter, bias=False),
               Linear(name="down_proj", in_features=inter, out_features=h, bias=False))
    else:
        mlp = (Linear(name="gate_proj", in_features=h, out_features=inter, bias=mlp_bias),
               Linear(name="up_proj", in_features=h, out_features=inter, bias=mlp_bias),
               Linear(name="down_proj", in_features=inter, out_features=h, bias=mlp_bias))
    norms = (4 if mt == "gemma2" else 2) * h          # gemma2 adds pre/post feed-forward norms
    if mt in ("qwen3", "qwen3_moe"):
        norms += 2 * hd                                # q_norm and k_norm over head_dim
    tied_default = mt in ("gemma", "gemma2")           # GemmaConfig defaults to tied (SOURCES.md)
    return Architecture(
        model_type=mt, vocab_size=V, hidden_size=h, num_layers=L, num_heads=nh, num_kv_heads=kv, head_dim=hd,
        intermediate_size=inter, tied_embeddings=bool(_get(cfg, "tie_word_embeddings", tied_default)),
        max_position_embeddings=optional_int(cfg, "max_position_embeddings", None, where),
        layer_linears=attn + mlp, layer_norm_params=norms, final_norm_params=h,
        num_experts=experts, experts_per_token=top_k)


def _phi(cfg: dict, where: str) -> Architecture:
    """Phi-1/2 (modeling_phi.py): parallel attention+MLP after one LayerNorm, biases everywhere."""
    h, L, nh, V = _core_dims(cfg, where)
    inter = optional_int(cfg, "intermediate_size", 4 * h, where)
    kv = _kv_heads(cfg, "num_key_value_heads", nh, where)
    hd = h // nh
    linears = (Linear(name="q_proj", in_features=h, out_features=nh * hd, bias=True),
               Linear(name="k_proj", in_features=h, out_features=kv * hd, bias=True),
               Linear(name="v_proj", in_features=h, out_features=kv * hd, bias=True),
               Linear(name="dense", in_features=nh * hd, out_features=h, bias=True),
               Linear(name="fc1", in_features=h, out_features=inter, bias=True),
               Linear(name="fc2", in_features=inter, out_features=h, bias=True))
    norms = 2 * h + (4 * hd if cfg.get("qk_layernorm") else 0)
    return Architecture(
        model_type="phi", vocab_size=V, hidden_size=h, num_layers=L, num_heads=nh, num_kv_heads=kv, head_dim=hd,
        intermediate_size=inter, tied_embeddings=bool(_get(cfg, "tie_word_embeddings", False)),
        max_position_embeddings=optional_int(cfg, "max_position_embeddings", None, where), layer_linears=linears,
        layer_norm_params=norms, final_norm_params=2 * h, lm_head_bias=True)


def _gpt2(cfg: dict, where: str) -> Architecture:
    """GPT-2 (modeling_gpt2.py): learned positions, Conv1D with biases, LayerNorms, tied head."""
    h, L, nh, V = _core_dims(cfg, where)
    P = _require(cfg, "max_position_embeddings", where)
    inter = optional_int(cfg, "intermediate_size", 4 * h, where)
    linears = (Linear(name="c_attn", in_features=h, out_features=3 * h, bias=True),
               Linear(name="c_proj", in_features=h, out_features=h, bias=True, scope="attn"),
               Linear(name="c_fc", in_features=h, out_features=inter, bias=True),
               Linear(name="c_proj", in_features=inter, out_features=h, bias=True, scope="mlp"))
    return Architecture(
        model_type="gpt2", vocab_size=V, hidden_size=h, num_layers=L, num_heads=nh, num_kv_heads=nh,
        head_dim=h // nh, intermediate_size=inter, tied_embeddings=bool(_get(cfg, "tie_word_embeddings", True)),
        max_position_embeddings=P, position_embeddings=P, layer_linears=linears, layer_norm_params=4 * h,
        final_norm_params=2 * h)


def _gpt_neox(cfg: dict, where: str) -> Architecture:
    """GPT-NeoX / Pythia (modeling_gpt_neox.py): fused qkv, biases, two LayerNorms, untied head."""
    h, L, nh, V = _core_dims(cfg, where)
    inter = _require(cfg, "intermediate_size", where)
    bias = bool(_get(cfg, "attention_bias", True))
    linears = (Linear(name="query_key_value", in_features=h, out_features=3 * h, bias=bias),
               Linear(name="dense", in_features=h, out_features=h, bias=bias),
               Linear(name="dense_h_to_4h", in_features=h, out_features=inter, bias=True),
               Linear(name="dense_4h_to_h", in_features=inter, out_features=h, bias=True))
    return Architecture(
        model_type="gpt_neox", vocab_size=V, hidden_size=h, num_layers=L, num_heads=nh, num_kv_heads=nh,
        head_dim=h // nh, intermediate_size=inter, tied_embeddings=bool(_get(cfg, "tie_word_embeddings", False)),
        max_position_embeddings=optional_int(cfg, "max_position_embeddings", None, where), layer_linears=linears,
        layer_norm_params=4 * h, final_norm_params=2 * h)


def _falcon(cfg: dict, where: str) -> Architecture:
    """Falcon (modeling_falcon.py), incl. legacy RW keys: multi-query, parallel attention, tied head."""
    h, L, nh, V = _core_dims(cfg, where)
    hd = h // nh
    new_arch = bool(cfg.get("new_decoder_architecture"))
    if new_arch:
        kv = _kv_heads(cfg, "num_kv_heads", nh, where)
    else:
        kv = 1 if cfg.get("multi_query", True) else nh
    bias = bool(_get(cfg, "bias", False))
    ffn = optional_int(cfg, "ffn_hidden_size", 4 * h, where)
    linears = (Linear(name="query_key_value", in_features=h, out_features=(nh + 2 * kv) * hd, bias=bias),
               Linear(name="dense", in_features=h, out_features=h, bias=bias),
               Linear(name="dense_h_to_4h", in_features=h, out_features=ffn, bias=bias),
               Linear(name="dense_4h_to_h", in_features=ffn, out_features=h, bias=bias))
    if new_arch:
        n_ln = optional_int(cfg, "num_ln_in_parallel_attn", 2, where)
    else:
        n_ln = 1 if cfg.get("parallel_attn", True) else 2
    return Architecture(
        model_type="falcon", vocab_size=V, hidden_size=h, num_layers=L, num_heads=nh, num_kv_heads=kv, head_dim=hd,
        intermediate_size=ffn, tied_embeddings=bool(_get(cfg, "tie_word_embeddings", True)),
        max_position_embeddings=optional_int(cfg, "max_position_embeddings", None, where), layer_linears=linears,
        layer_norm_params=n_ln * 2 * h, final_norm_params=2 * h)


_BUILDERS = {"llama": _llama_like, "mistral": _llama_like, "qwen2": _llama_like, "qwen3": _llama_like,
             "gemma": _llama_like, "gemma2": _llama_like, "mixtral": _llama_like, "phi3": _llama_like,
             "qwen3_moe": _llama_like,
             "phi": _phi, "gpt2": _gpt2, "gpt_neox": _gpt_neox, "falcon": _falcon}
