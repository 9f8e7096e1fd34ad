#!/usr/bin/env python3
"""The PyTorch peer of `npm run bench -- --train`: one LoRA training step timed on the CPU, on the
same shapes as pefc's bench step, written from the architectures' definitions (Llama: RMSNorm,
rotate-half RoPE, grouped-query causal attention, SwiGLU, tied head; GPT-2: LayerNorm, learned
positions, causal attention, tanh-GELU MLP, tied head) and LoRA's y = W x + (alpha/r) B A x with the
base frozen; loss = shifted causal-LM cross-entropy, clip_grad_norm_(1.0), torch.optim.AdamW.
Weights are seeded N(0, 0.02) in float32: only the time matters here.

    python3 torch_peer.py CONFIG.json    prints {"ms": [...], "cpu_ms": [...], "threads": n, "torch": "..."}

Config: model ("llama" | "gpt2"), the Hugging Face config fields it needs, batch, seq, rank,
alpha, steps (timed, after one warm-up step), threads.
"""

import json
import math
import sys

import torch
import torch.nn.functional as F

from peer_timing import time_steps


def lora_linear(x, w, b, lora):
    y = x @ w.t()
    if b is not None:
        y = y + b
    if lora is not None:
        a, bb, s = lora
        y = y + s * ((x @ a.t()) @ bb.t())
    return y


def causal_attention(q, k, v):
    # q [B, H, T, D], k/v [B, H, T, D]
    t = q.shape[2]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def rope(x, theta):
    # rotate-half RoPE over the last dim; x [B, H, T, D]
    d = x.shape[-1]
    t = x.shape[2]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = torch.arange(t, dtype=torch.float32)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], dim=-1)
    sin = torch.cat([ang.sin(), ang.sin()], dim=-1)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def build(c, gen):
    def w(*shape):
        return (torch.randn(*shape, generator=gen) * 0.02).requires_grad_(False)

    r, alpha = c["rank"], c["alpha"]
    loras = []

    def lora(out_f, in_f):
        a = (torch.randn(r, in_f, generator=gen) / math.sqrt(in_f)).requires_grad_(True)
        b = torch.zeros(out_f, r).requires_grad_(True)
        loras.extend([a, b])
        return (a, b, alpha / r)

    h = c["hidden_size"]
    layers = []
    if c["model"] == "llama":
        nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
        hd = c.get("head_dim", h // nh)
        inter = c["intermediate_size"]
        for _ in range(c["num_hidden_layers"]):
            layers.append({
                "n1": torch.ones(h), "n2": torch.ones(h),
                "q": w(nh * hd, h), "k": w(nkv * hd, h), "v": w(nkv * hd, h), "o": w(h, nh * hd),
                "gate": w(inter, h), "up": w(inter, h), "down": w(h, inter),
                "lq": lora(nh * hd, h), "lv": lora(nkv * hd, h),
            })
        model = {"emb": w(c["vocab_size"], h), "norm": torch.ones(h), "layers": layers}
    else:
        inter = 4 * h
        for _ in range(c["n_layer"]):
            layers.append({
                "ln1w": torch.ones(h), "ln1b": torch.zeros(h), "ln2w": torch.ones(h), "ln2b": torch.zeros(h),
                "attn": w(3 * h, h), "attnb": torch.zeros(3 * h), "proj": w(h, h), "projb": torch.zeros(h),
                "fc": w(inter, h), "fcb": torch.zeros(inter), "fc2": w(h, inter), "fc2b": torch.zeros(h),
                "lattn": lora(3 * h, h),
            })
        model = {"wte": w(c["vocab_size"], h), "wpe": w(c["n_positions"], h), "lnfw": torch.ones(h), "lnfb": torch.zeros(h), "layers": layers}
    return model, loras


def forward_llama(m, c, ids):
    bsz, t = ids.shape
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim", c["hidden_size"] // nh)
    eps, theta = c["rms_norm_eps"], c["rope_theta"]
    x = m["emb"][ids]
    for L in m["layers"]:
        hN = rmsnorm(x, L["n1"], eps)
        q = lora_linear(hN, L["q"], None, L["lq"]).view(bsz, t, nh, hd).transpose(1, 2)
        k = lora_linear(hN, L["k"], None, None).view(bsz, t, nkv, hd).transpose(1, 2)
        v = lora_linear(hN, L["v"], None, L["lv"]).view(bsz, t, nkv, hd).transpose(1, 2)
        q, k = rope(q, theta), rope(k, theta)
        rep = nh // nkv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        a = causal_attention(q, k, v).transpose(1, 2).reshape(bsz, t, nh * hd)
        x = x + a @ L["o"].t()
        hN = rmsnorm(x, L["n2"], eps)
        x = x + (F.silu(hN @ L["gate"].t()) * (hN @ L["up"].t())) @ L["down"].t()
    return rmsnorm(x, m["norm"], eps) @ m["emb"].t()


def forward_gpt2(m, c, ids):
    bsz, t = ids.shape
    h, nh = c["hidden_size"], c["n_head"]
    hd = h // nh
    eps = c.get("layer_norm_epsilon", 1e-5)
    x = m["wte"][ids] + m["wpe"][:t]
    for L in m["layers"]:
        hN = F.layer_norm(x, (h,), L["ln1w"], L["ln1b"], eps)
        qkv = lora_linear(hN, L["attn"], L["attnb"], L["lattn"])
        q, k, v = (z.view(bsz, t, nh, hd).transpose(1, 2) for z in qkv.split(h, dim=-1))
        a = causal_attention(q, k, v).transpose(1, 2).reshape(bsz, t, h)
        x = x + a @ L["proj"].t() + L["projb"]
        hN = F.layer_norm(x, (h,), L["ln2w"], L["ln2b"], eps)
        x = x + F.gelu(hN @ L["fc"].t() + L["fcb"], approximate="tanh") @ L["fc2"].t() + L["fc2b"]
    return F.layer_norm(x, (h,), m["lnfw"], m["lnfb"], eps) @ m["wte"].t()


def main():
    c = json.load(open(sys.argv[1]))
    if "n_embd" in c:  # GPT-2's names
        c["hidden_size"] = c["n_embd"]
    torch.set_num_threads(int(c.get("threads", 2)))
    gen = torch.Generator().manual_seed(7)
    model, loras = build(c, gen)
    opt = torch.optim.AdamW(loras, lr=1e-3)
    fwd = forward_llama if c["model"] == "llama" else forward_gpt2
    ids = torch.randint(3, c["vocab_size"], (c["batch"], c["seq"]), generator=gen)

    def step():
        logits = fwd(model, c, ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(loras, 1.0)
        opt.step()
        return float(loss)

    ms, cpu_ms = time_steps(step, int(c["steps"]))
    print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
