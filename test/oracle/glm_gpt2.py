#!/usr/bin/env python3
"""An independent PyTorch oracle for the base forward pass of ChatGLM2 and GPT-2 checkpoints.

pefc's reference executor is checked against this file, so it is written from the architectures'
definitions, not from the project's code:

ChatGLM2 as THUDM's modeling_chatglm.py computes it (ChatGLMForConditionalGeneration): RMSNorm
pre-norm blocks; one fused query_key_value Linear (bias) split into q [heads*kv_channels] and k, v
[groups*kv_channels]; RotaryEmbedding(kv_channels // 2) whose cache holds one (cos, sin) per pair,
applied by apply_rotary_pos_emb to the first rot_dim = 2 * len(frequencies) channels of each head
with INTERLEAVED pairs (channels 2i, 2i+1 form pair i: the tensor is viewed as (..., rot_dim/2, 2)),
frequencies base^(-2i/n) with n = kv_channels // 2 and base = 10000 * rope_ratio; the stored
inv_freq buffer is not read (forward_impl recomputes the frequencies); kv group g serves query heads
g*rep .. g*rep+rep-1 (unsqueeze/expand/view); causal softmax with scale 1/sqrt(kv_channels)
(apply_query_key_layer_scaling divides by layer_number and multiplies back before the softmax: the
same math); dense; residual on the un-normalised stream (or on the norm output with
apply_residual_connection_post_layernorm); MLP dense_h_to_4h -> chunk in two, silu(first) * second
-> dense_4h_to_h; final_layernorm when post_layer_norm; untied output_layer.

GPT-2 as transformers' GPT2LMHeadModel computes it: wte + wpe(0..T-1); per block ln_1 -> Conv1D
c_attn (x @ W + b, W stored [in, out]) split into q, k, v -> heads -> causal softmax of
q k^T / sqrt(head_dim) (scale_attn_weights; also / (layer+1) with scale_attn_by_inverse_layer_idx)
-> c_proj; residual; ln_2 -> c_fc -> activation_function -> c_proj; residual; ln_f; lm_head tied to
wte unless tie_word_embeddings is false. Dropout is off (eval).

Both: HF causal-LM loss, logits[:, :-1] against labels[:, 1:], ignore_index -100, mean.

Prefix tuning as PEFT runs it (optional "prefix": the [P, 2*L*kv_dim] prompt_embeddings table,
last axis ordered layer, key|value, head, channel): every layer's keys and values get P rows in
front, visible to every query; the real keys are causal among themselves. The prefixes enter as
the attention cache, so each model numbers the real tokens as it numbers tokens after a cache:
GPT2Model from the cache length (cache_position = arange(past, past + T), so wpe rows P..P+T-1);
ChatGLM2's modelling_chatglm.py from 0 whatever the cache holds, and its cached keys (the
prefixes) are not rotated.

    python3 glm_gpt2.py CONFIG.json    one JSON object on stdout

Config: { "arch": "chatglm2" | "gpt2", "model_dir": DIR, "input_ids": [[...]], "labels": [[...]],
"dtype": "float64" | "float32", "prefix"?: [[...]] }. Result: { "loss", "logits_sample" (first 16 logits of the last
position of row 0), "logits_sum" (sum of every logit), "logits_abs_sum", "logits_row1_last" (first
16 logits of row 1's last position, when there is a row 1) }.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stories_lora import IGNORE_INDEX, read_safetensors  # noqa: E402

SAMPLE = 16


def load(model_dir, dtype):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    raw = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    return config, {k: torch.tensor(v, dtype=dtype) for k, v in raw.items()}


def causal_attention(q, k, v, scale, P=0):
    """q [B, H, T, hd], k, v [B, H, P+T, hd]: the first P keys are visible to every query, real key
    j to query i when j <= i."""
    T = q.shape[-2]
    scores = (q @ k.transpose(-1, -2)) * scale
    future = torch.triu(torch.ones(T, T + P, dtype=torch.bool), diagonal=1 + P)
    scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def prefix_rows(prefix, layer, which, B, heads, hd):
    """Layer `layer`'s keys (which 0) or values (1) of the prefix table, [B, P, heads, hd]."""
    if prefix is None:
        return None
    width = heads * hd
    at = (2 * layer + which) * width
    rows = prefix[:, at : at + width].reshape(prefix.shape[0], heads, hd)
    return rows.unsqueeze(0).expand(B, *rows.shape)


# ---------------------------------------------------------------------------------------------
# ChatGLM2


class ChatGLM2:
    def __init__(self, config, w, dtype):
        self.c = config
        self.w = w
        self.dtype = dtype
        if config.get("fp32_residual_connection"):
            raise ValueError("fp32_residual_connection is not modelled")
        if config.get("pre_seq_len") is not None:
            raise ValueError("pre_seq_len (P-Tuning v2) is not modelled")
        self.L = config["num_layers"]
        self.H = config["num_attention_heads"]
        self.D = config["hidden_size"]
        self.hd = config.get("kv_channels") or self.D // self.H
        self.G = config["multi_query_group_num"] if config.get("multi_query_attention") else self.H
        self.eps = config.get("layernorm_epsilon", 1e-5)
        self.rms = config.get("rmsnorm", True)
        self.post_norm = config.get("post_layer_norm", True)
        self.residual_from_norm = config.get("apply_residual_connection_post_layernorm", False)
        self.base = 10000.0 * config.get("rope_ratio", 1)

    def norm(self, path, x):
        if self.rms:
            var = x.pow(2).mean(-1, keepdim=True)
            return self.w[path + ".weight"] * (x * torch.rsqrt(var + self.eps))
        return F.layer_norm(x, (self.D,), self.w[path + ".weight"], self.w[path + ".bias"], self.eps)

    def linear(self, path, x):
        y = x @ self.w[path + ".weight"].T
        b = self.w.get(path + ".bias")
        return y if b is None else y + b

    def rope_cache(self, T):
        """[T, n_freq, 2] of (cos, sin), as RotaryEmbedding(kv_channels // 2).forward_impl builds it."""
        n = self.hd // 2
        theta = 1.0 / (self.base ** (torch.arange(0, n, 2, dtype=torch.float64) / n))
        idx = torch.outer(torch.arange(T, dtype=torch.float64), theta)
        return torch.stack([idx.cos(), idx.sin()], dim=-1).to(self.dtype)

    @staticmethod
    def apply_rope(x, cache):
        """x: [B, T, heads, hd]; rotates channel pairs (2i, 2i+1) for i < n_freq, passes the rest."""
        B, T, nh, _ = x.shape
        rot = cache.shape[-2] * 2
        xr, xp = x[..., :rot], x[..., rot:]
        pairs = xr.reshape(B, T, nh, rot // 2, 2)
        c = cache[:T].view(1, T, 1, rot // 2, 2)
        cos, sin = c[..., 0], c[..., 1]
        a, b = pairs[..., 0], pairs[..., 1]
        out = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(3)
        return torch.cat([out, xp], dim=-1)

    def attention(self, p, x, cache, layer=0, prefix=None):
        B, T, _ = x.shape
        qkv = self.linear(p + ".query_key_value", x)
        q, k, v = qkv.split([self.H * self.hd, self.G * self.hd, self.G * self.hd], dim=-1)
        q = self.apply_rope(q.view(B, T, self.H, self.hd), cache)
        k = self.apply_rope(k.view(B, T, self.G, self.hd), cache)
        v = v.view(B, T, self.G, self.hd)
        P = 0
        if prefix is not None:
            # The cache (the prefixes) goes in front of the rotated new keys, itself unrotated.
            k = torch.cat([prefix_rows(prefix, layer, 0, B, self.G, self.hd), k], dim=1)
            v = torch.cat([prefix_rows(prefix, layer, 1, B, self.G, self.hd), v], dim=1)
            P = prefix.shape[0]
        S = k.shape[1]
        rep = self.H // self.G
        k = k.unsqueeze(-2).expand(B, S, self.G, rep, self.hd).reshape(B, S, self.H, self.hd)
        v = v.unsqueeze(-2).expand(B, S, self.G, rep, self.hd).reshape(B, S, self.H, self.hd)
        o = causal_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), 1.0 / math.sqrt(self.hd), P)
        return self.linear(p + ".dense", o.transpose(1, 2).reshape(B, T, self.H * self.hd))

    def mlp(self, p, x):
        u = self.linear(p + ".dense_h_to_4h", x)
        a, b = torch.chunk(u, 2, dim=-1)
        return self.linear(p + ".dense_4h_to_h", F.silu(a) * b)

    def logits(self, ids, prefix=None):
        T = ids.shape[1]
        h = F.embedding(ids, self.w["transformer.embedding.word_embeddings.weight"])
        # Positions 0..T-1, with or without prefixes in the cache.
        cache = self.rope_cache(T)
        for i in range(self.L):
            p = f"transformer.encoder.layers.{i}"
            x = self.norm(p + ".input_layernorm", h)
            h1 = (x if self.residual_from_norm else h) + self.attention(p + ".self_attention", x, cache, i, prefix)
            y = self.norm(p + ".post_attention_layernorm", h1)
            h = (y if self.residual_from_norm else h1) + self.mlp(p + ".mlp", y)
        if self.post_norm:
            h = self.norm("transformer.encoder.final_layernorm", h)
        return h @ self.w["transformer.output_layer.weight"].T


# ---------------------------------------------------------------------------------------------
# GPT-2


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "tanh": torch.tanh,
    "gelu": F.gelu,
}


class GPT2:
    def __init__(self, config, w, dtype):
        self.c = config
        # Checkpoints of the bare GPT2Model have no "transformer." prefix.
        self.w = {(k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k): t for k, t in w.items()}
        self.dtype = dtype
        self.L = config["n_layer"]
        self.H = config["n_head"]
        self.D = config["n_embd"]
        self.hd = self.D // self.H
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        name = config.get("activation_function", "gelu_new")
        if name not in ACTIVATIONS:
            raise ValueError(f"activation_function {name!r} is not modelled")
        self.act = ACTIVATIONS[name]
        self.scale_weights = config.get("scale_attn_weights", True)
        self.by_layer = config.get("scale_attn_by_inverse_layer_idx", False)
        if config.get("tie_word_embeddings", True) or "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["transformer.wte.weight"]

    def ln(self, path, x):
        return F.layer_norm(x, (self.D,), self.w[path + ".weight"], self.w[path + ".bias"], self.eps)

    def conv1d(self, path, x):
        return x @ self.w[path + ".weight"] + self.w[path + ".bias"]

    def attention(self, p, x, layer, prefix=None):
        B, T, _ = x.shape
        q, k, v = self.conv1d(p + ".c_attn", x).split(self.D, dim=-1)
        q, k, v = (t.view(B, T, self.H, self.hd) for t in (q, k, v))
        P = 0
        if prefix is not None:
            k = torch.cat([prefix_rows(prefix, layer, 0, B, self.H, self.hd), k], dim=1)
            v = torch.cat([prefix_rows(prefix, layer, 1, B, self.H, self.hd), v], dim=1)
            P = prefix.shape[0]
        scale = (1.0 / math.sqrt(self.hd) if self.scale_weights else 1.0) / ((layer + 1) if self.by_layer else 1)
        o = causal_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale, P)
        return self.conv1d(p + ".c_proj", o.transpose(1, 2).reshape(B, T, self.D))

    def logits(self, ids, prefix=None):
        T = ids.shape[1]
        # cache_position = arange(past, past + T): the real tokens follow the P cached prefixes.
        past = 0 if prefix is None else prefix.shape[0]
        h = F.embedding(ids, self.w["transformer.wte.weight"]) + self.w["transformer.wpe.weight"][past : past + T]
        for i in range(self.L):
            p = f"transformer.h.{i}"
            h = h + self.attention(p + ".attn", self.ln(p + ".ln_1", h), i, prefix)
            m = self.act(self.conv1d(p + ".mlp.c_fc", self.ln(p + ".ln_2", h)))
            h = h + self.conv1d(p + ".mlp.c_proj", m)
        return self.ln("transformer.ln_f", h) @ self.w["lm_head.weight"].T


# ---------------------------------------------------------------------------------------------


def causal_lm_loss(logits, labels):
    V = logits.shape[-1]
    return F.cross_entropy(
        logits[:, :-1, :].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX, reduction="mean"
    )


MODELS = {"chatglm2": ChatGLM2, "gpt2": GPT2}


def forward(cfg):
    dtype = {"float64": torch.float64, "float32": torch.float32}[cfg.get("dtype", "float64")]
    arch = cfg["arch"]
    if arch not in MODELS:
        raise ValueError(f"arch {arch!r}: expected one of {sorted(MODELS)}")
    config, w = load(cfg["model_dir"], dtype)
    model = MODELS[arch](config, w, dtype)
    ids = torch.tensor(cfg["input_ids"], dtype=torch.long)
    labels = torch.tensor(cfg["labels"], dtype=torch.long)
    if ids.dim() != 2 or ids.shape != labels.shape:
        raise ValueError("input_ids and labels must be equal-shaped [rows, T] lists")
    prefix = torch.tensor(cfg["prefix"], dtype=dtype) if cfg.get("prefix") is not None else None
    with torch.no_grad():
        logits = model.logits(ids, prefix)
        loss = causal_lm_loss(logits, labels)
    out = {
        "loss": loss.item(),
        "logits_sample": logits[0, -1, :SAMPLE].tolist(),
        "logits_sum": logits.sum().item(),
        "logits_abs_sum": logits.abs().sum().item(),
    }
    if logits.shape[0] > 1:
        out["logits_row1_last"] = logits[1, -1, :SAMPLE].tolist()
    return out


def main(argv):
    if len(argv) != 2:
        print("usage: glm_gpt2.py CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        cfg = json.load(f)
    print(json.dumps(forward(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
