#!/usr/bin/env python3
"""An independent PyTorch oracle for LoRA training on a Llama checkpoint (stories260K).

The project's reference executor and WebGPU runtime are checked against this file, so it is
written from the architecture's definition, not from the project's code: Llama as Hugging Face's
LlamaForCausalLM computes it (RMSNorm, rotate-half RoPE, grouped-query causal attention, SwiGLU,
tied head, shifted causal-LM loss), PEFT's LoRA (y = W x + (alpha/r) B A x, base frozen), and an
optimizer step as Accelerate drives torch: each micro-batch's loss divided by grad_accum, grads
summed over the micro-batches, clip_grad_norm_, then torch.optim.SGD or torch.optim.AdamW.

    python3 stories_lora.py CONFIG.json    one JSON result object on stdout
    python3 stories_lora.py --selftest [MODEL_DIR]

Config keys: model_dir, adapter_dir (PEFT LoRA: adapter_config.json + adapter_model.safetensors),
batches [{input_ids, labels, attention_mask?}], optimizer "sgd" | "adamw", lr, momentum,
weight_decay, betas, eps, grad_accum, clip (0 = none), steps, dtype "float64" | "float32".
Micro-batch k of the whole run (k = step * grad_accum + i) is batches[k % len(batches)]: the list
is cycled when the run needs more micro-batches than it holds. Rows are pre-padded; with no
attention_mask every token attends causally to all earlier ones (right padding is then harmless:
padded positions come after every counted one and their labels are -100). Positions are 0..T-1 in
every row.

Result: losses (per optimizer step, the mean of its micro-batch losses), micro_losses (each
micro-batch's unscaled loss, in run order), grad_norms (total 2-norm of the summed gradients
before clipping, per step, reported whether or not clip > 0), adapter (every adapter tensor after
the last step, flattened row-major, under its key in the adapter file).
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = -100

# ---------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header, then raw little-endian data.

_NP_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = blob[base + start : base + end]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif info["dtype"] in _NP_DTYPES:
            arr = np.frombuffer(raw, dtype=_NP_DTYPES[info["dtype"]])
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        out[name] = arr.reshape(shape).copy()
    return out


# ---------------------------------------------------------------------------------------------
# The model.


class Llama:
    """LlamaForCausalLM's forward over a dict of frozen weights, with optional LoRA on Linear layers."""

    def __init__(self, config, weights, dtype):
        self.c = config
        self.dtype = dtype
        self.L = config["num_hidden_layers"]
        self.H = config["num_attention_heads"]
        self.KV = config.get("num_key_value_heads", self.H)
        self.D = config["hidden_size"]
        self.hd = config.get("head_dim") or self.D // self.H
        self.eps = config["rms_norm_eps"]
        self.theta = config.get("rope_theta", 10000.0)
        for key in ("rope_scaling", "attention_bias", "mlp_bias"):
            if config.get(key):
                raise ValueError(f"config {key}={config[key]!r} is not modelled by this oracle")
        if config.get("hidden_act", "silu") != "silu":
            raise ValueError("only hidden_act silu is modelled")
        self.w = {k: torch.tensor(v, dtype=dtype) for k, v in weights.items()}
        if "lm_head.weight" not in self.w:
            if not config.get("tie_word_embeddings", False):
                raise ValueError("no lm_head.weight and embeddings are not tied")
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        for t in self.w.values():
            t.requires_grad_(False)
        # module path -> (A [r,in], B [out,r], scaling)
        self.lora = {}

    def linear(self, path, x):
        y = x @ self.w[path + ".weight"].T
        ad = self.lora.get(path)
        if ad is not None:
            A, B, s = ad
            y = y + s * ((x @ A.T) @ B.T)
        return y

    def rmsnorm(self, path, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.w[path + ".weight"] * (x * torch.rsqrt(var + self.eps))

    def rope(self, T):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
        pos = torch.arange(T, dtype=torch.float64)
        freqs = torch.outer(pos, inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat([-x[..., h:], x[..., :h]], dim=-1)

    def attention(self, p, x, cos, sin, mask):
        Bn, T, _ = x.shape
        q = self.linear(p + ".q_proj", x).view(Bn, T, self.H, self.hd).transpose(1, 2)
        k = self.linear(p + ".k_proj", x).view(Bn, T, self.KV, self.hd).transpose(1, 2)
        v = self.linear(p + ".v_proj", x).view(Bn, T, self.KV, self.hd).transpose(1, 2)
        q = q * cos + self.rotate_half(q) * sin
        k = k * cos + self.rotate_half(k) * sin
        rep = self.H // self.KV  # query head h reads kv head h // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        probs = torch.softmax(scores, dim=-1)
        o = (probs @ v).transpose(1, 2).reshape(Bn, T, self.H * self.hd)
        return self.linear(p + ".o_proj", o)

    def mlp(self, p, x):
        return self.linear(p + ".down_proj", F.silu(self.linear(p + ".gate_proj", x)) * self.linear(p + ".up_proj", x))

    def logits(self, input_ids, attention_mask=None):
        Bn, T = input_ids.shape
        h = F.embedding(input_ids, self.w["model.embed_tokens.weight"])
        cos, sin = self.rope(T)
        neg = torch.finfo(self.dtype).min
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        mask = torch.zeros(Bn, 1, T, T, dtype=self.dtype).masked_fill(causal, neg)
        if attention_mask is not None:
            pad = (attention_mask == 0)[:, None, None, :]
            mask = mask.masked_fill(pad, neg)
        for i in range(self.L):
            p = f"model.layers.{i}"
            h = h + self.attention(p + ".self_attn", self.rmsnorm(p + ".input_layernorm", h), cos, sin, mask)
            h = h + self.mlp(p + ".mlp", self.rmsnorm(p + ".post_attention_layernorm", h))
        h = self.rmsnorm("model.norm", h)
        return h @ self.w["lm_head.weight"].T

    def loss(self, input_ids, labels, attention_mask=None):
        logits = self.logits(input_ids, attention_mask)
        V = logits.shape[-1]
        return F.cross_entropy(
            logits[:, :-1, :].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX, reduction="mean"
        )


def load_model(model_dir, dtype):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    return Llama(config, read_safetensors(os.path.join(model_dir, "model.safetensors")), dtype)


# ---------------------------------------------------------------------------------------------
# PEFT LoRA adapters.

_PREFIX = "base_model.model."


def load_adapter(model, adapter_dir):
    """Attaches the adapter's LoRA matrices as trainable leaves; returns [(key, tensor)] in file-key order."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    if cfg.get("peft_type") != "LORA":
        raise ValueError(f"adapter peft_type {cfg.get('peft_type')!r} is not LORA")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern") or cfg.get("use_dora") or cfg.get("fan_in_fan_out"):
        raise ValueError("rank_pattern, alpha_pattern, DoRA and fan_in_fan_out are not modelled")
    if cfg.get("lora_dropout", 0) != 0:
        raise ValueError("the oracle trains with lora_dropout 0 only")
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    targets = cfg["target_modules"]
    params = []
    paths = sorted({k[len(_PREFIX) :].rsplit(".lora_", 1)[0] for k in tensors})
    for path in paths:
        leaf = path.rsplit(".", 1)[-1]
        if isinstance(targets, list) and leaf not in targets:
            raise ValueError(f"adapter tensor for {path}, which target_modules {targets} does not select")
        ka, kb = f"{_PREFIX}{path}.lora_A.weight", f"{_PREFIX}{path}.lora_B.weight"
        if ka not in tensors or kb not in tensors:
            raise ValueError(f"{path}: needs both lora_A and lora_B")
        A = torch.tensor(tensors[ka], dtype=model.dtype, requires_grad=True)
        B = torch.tensor(tensors[kb], dtype=model.dtype, requires_grad=True)
        W = model.w[path + ".weight"]
        if A.shape != (r, W.shape[1]) or B.shape != (W.shape[0], r):
            raise ValueError(f"{path}: lora shapes {tuple(A.shape)}, {tuple(B.shape)} do not fit weight {tuple(W.shape)} at r={r}")
        model.lora[path] = (A, B, scaling)
        params += [(ka, A), (kb, B)]
    if len(params) != len(tensors):
        raise ValueError("adapter file holds tensors that are not lora_A/lora_B pairs")
    return params


# ---------------------------------------------------------------------------------------------
# Training.


def as_batch(b):
    ids = torch.tensor(b["input_ids"], dtype=torch.long)
    labels = torch.tensor(b["labels"], dtype=torch.long)
    mask = torch.tensor(b["attention_mask"], dtype=torch.long) if "attention_mask" in b else None
    if ids.shape != labels.shape or ids.dim() != 2:
        raise ValueError("input_ids and labels must be equal-shaped [rows, T] lists")
    return ids, labels, mask


def make_optimizer(cfg, tensors):
    kind = cfg.get("optimizer", "sgd")
    lr = cfg["lr"]
    if kind == "sgd":
        return torch.optim.SGD(tensors, lr=lr, momentum=cfg.get("momentum", 0.0), weight_decay=cfg.get("weight_decay", 0.0))
    if kind == "adamw":
        betas = tuple(cfg.get("betas", [0.9, 0.999]))
        return torch.optim.AdamW(tensors, lr=lr, betas=betas, eps=cfg.get("eps", 1e-8), weight_decay=cfg.get("weight_decay", 0.01))
    raise ValueError(f"unknown optimizer {kind!r}")


def total_norm(tensors):
    return torch.norm(torch.stack([t.grad.detach().norm(2) for t in tensors]), 2)


def train(cfg):
    dtype = {"float64": torch.float64, "float32": torch.float32}[cfg.get("dtype", "float64")]
    torch.set_default_dtype(dtype)
    model = load_model(cfg["model_dir"], dtype)
    params = load_adapter(model, cfg["adapter_dir"])
    tensors = [t for _, t in params]
    opt = make_optimizer(cfg, tensors)
    batches = [as_batch(b) for b in cfg["batches"]]
    if not batches:
        raise ValueError("no batches")
    accum = cfg.get("grad_accum", 1)
    clip = cfg.get("clip", 0.0)
    losses, micro_losses, norms = [], [], []
    k = 0
    for _ in range(cfg.get("steps", 1)):
        step_loss = 0.0
        for _ in range(accum):
            ids, labels, mask = batches[k % len(batches)]
            k += 1
            loss = model.loss(ids, labels, mask)
            (loss / accum).backward()
            micro_losses.append(loss.item())
            step_loss += loss.item() / accum
        losses.append(step_loss)
        if clip > 0:
            norms.append(float(torch.nn.utils.clip_grad_norm_(tensors, clip)))
        else:
            norms.append(float(total_norm(tensors)))
        opt.step()
        opt.zero_grad()
    adapter = {key: t.detach().reshape(-1).tolist() for key, t in params}
    return {"losses": losses, "micro_losses": micro_losses, "grad_norms": norms, "adapter": adapter}


# ---------------------------------------------------------------------------------------------
# Self-test: checks of the oracle that need nothing but the checkpoint.


def bpe_encode(tokenizer_json, text):
    """SentencePiece-style BPE of a tokenizer.json (Prepend/Replace '▁' normalizer, byte fallback), BOS first."""
    with open(tokenizer_json) as f:
        tok = json.load(f)
    model = tok["model"]
    vocab = model["vocab"]
    ranks = {}
    for i, m in enumerate(model["merges"]):
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        ranks[(a, b)] = i
    s = "\u2581" + text.replace(" ", "\u2581")
    pieces = list(s)
    while len(pieces) > 1:
        best = min(range(len(pieces) - 1), key=lambda i: ranks.get((pieces[i], pieces[i + 1]), math.inf))
        if (pieces[best], pieces[best + 1]) not in ranks:
            break
        pieces[best : best + 2] = [pieces[best] + pieces[best + 1]]
    ids = [1]
    for p in pieces:
        if p in vocab:
            ids.append(vocab[p])
        else:
            ids += [vocab[f"<0x{b:02X}>"] for b in p.encode("utf-8")]
    return ids


def selftest(model_dir):
    torch.set_default_dtype(torch.float64)
    dt = torch.float64
    model = load_model(model_dir, dt)
    sentence = "Once upon a time, there was a little girl named Lily."
    ids = bpe_encode(os.path.join(model_dir, "tokenizer.json"), sentence)
    x = torch.tensor([ids])
    base = model.loss(x, x).item()
    report = {"sentence": sentence, "ids": ids, "base_loss": base, "uniform_loss": math.log(model.c["vocab_size"])}
    checks = {"base_loss_low": base < 0.6 * math.log(model.c["vocab_size"])}

    # LoRA with B = 0 leaves the model as it was, bit for bit.
    g = torch.Generator().manual_seed(0)
    for i in range(model.L):
        for leaf, out in (("q_proj", model.H * model.hd), ("v_proj", model.KV * model.hd)):
            A = (0.05 * torch.randn(4, model.D, generator=g)).requires_grad_(True)
            B = torch.zeros(out, 4, requires_grad=True)
            model.lora[f"model.layers.{i}.self_attn.{leaf}"] = (A, B, 2.0)
    b0 = model.loss(x, x).item()
    report["b_zero_loss"] = b0
    checks["b_zero_equals_base"] = b0 == base

    # Non-zero B: autograd against a central finite difference, one entry of A and one of B.
    for path, (A, B, s) in model.lora.items():
        with torch.no_grad():
            B.copy_(0.05 * torch.randn(B.shape, generator=g))
    A, B, _ = model.lora["model.layers.2.self_attn.v_proj"]
    loss = model.loss(x, x)
    loss.backward()
    fd = {}
    for name, t, idx in (("A", A, (1, 7)), ("B", B, (5, 2))):
        h = 1e-5
        with torch.no_grad():
            old = t[idx].item()
            t[idx] = old + h
            up = model.loss(x, x).item()
            t[idx] = old - h
            down = model.loss(x, x).item()
            t[idx] = old
        num = (up - down) / (2 * h)
        ana = t.grad[idx].item()
        fd[name] = {"autograd": ana, "finite_difference": num}
        checks[f"fd_{name}"] = abs(num - ana) <= 1e-6 * abs(ana) + 1e-10 and ana != 0.0
    report["finite_difference"] = fd

    # torch's AdamW first step against its formula: p(1 - lr wd) - lr g / (|g| + eps) (bias-corrected m/v).
    p = torch.tensor([0.3, -0.2, 0.0], requires_grad=True)
    grad = torch.tensor([0.5, -1e-3, 2.0])
    opt = torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    p.grad = grad.clone()
    opt.step()
    want = torch.tensor([0.3, -0.2, 0.0]) * (1 - 0.01 * 0.1) - 0.01 * grad / (grad.abs() + 1e-8)
    checks["adamw_first_step"] = bool(torch.allclose(p.detach(), want, rtol=0, atol=1e-12))

    report["checks"] = checks
    report["ok"] = all(checks.values())
    return report


def main(argv):
    if len(argv) >= 2 and argv[1] == "--selftest":
        here = os.path.dirname(os.path.abspath(__file__))
        default = os.path.join(here, "..", "..", "..", "shared", "models", "stories260K", "hf")
        report = selftest(argv[2] if len(argv) > 2 else os.path.normpath(default))
        print(json.dumps(report))
        return 0 if report["ok"] else 1
    if len(argv) != 2:
        print("usage: stories_lora.py CONFIG.json | --selftest [MODEL_DIR]", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        cfg = json.load(f)
    print(json.dumps(train(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
