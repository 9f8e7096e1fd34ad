#!/usr/bin/env python3
"""PyTorch + PEFT on the same GPU as bench/gpu.ts: an AdaLoRA step on a ChatGLM2-6B-shaped model.

ChatGLM2's modeling code is not part of transformers (it is trust_remote_code), and nothing can
be fetched on a GPU machine, so the peer is transformers' LlamaForCausalLM with ChatGLM2-6B's
shapes: hidden 4096, 28 layers, 32 query heads of 128, 2 key/value groups, SwiGLU 13696, vocab
65024, RMSNorm, RoPE. AdaLoRA (r=8, init_r=12, alpha=32) goes on q_proj, k_proj and v_proj, the
three parts of ChatGLM2's fused query_key_value. Base weights f16 (random), adapters f32, AdamW.

    python3 peft_gpu_peer.py --layers 28 --batch 1 --seq 512 --steps 3
prints lines "peft: ..." and "RESULT peft_ms=... peft_tok_s=... peft_peak_gib=..."
"""

import argparse
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()

    import peft
    import transformers
    from peft import AdaLoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    dev = torch.device("cuda")
    cfg = LlamaConfig(
        hidden_size=4096, intermediate_size=13696, num_hidden_layers=a.layers, num_attention_heads=32,
        num_key_value_heads=2, head_dim=128, vocab_size=65024, max_position_embeddings=32768,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    with torch.device(dev):
        model = LlamaForCausalLM(cfg).to(torch.float16)
    total = a.steps + 1
    pc = AdaLoraConfig(
        r=8, init_r=12, lora_alpha=32, lora_dropout=0.01, target_modules=["q_proj", "k_proj", "v_proj"],
        tinit=1, tfinal=1, deltaT=1, total_step=max(total, 3),
    )
    model = get_peft_model(model, pc)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(3, 65024, (a.batch, a.seq), device=dev)

    def step(i):
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        model.base_model.update_and_allocate(i)
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    step(0)
    torch.cuda.synchronize()
    ms = []
    for i in range(1, a.steps + 1):
        t0 = time.perf_counter()
        step(i)
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    m = ms[len(ms) // 2]
    peak = torch.cuda.max_memory_allocated() / 2**30
    tok = a.batch * a.seq * 1000 / m
    print(f"peft: torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, {torch.cuda.get_device_name()}")
    print(f"peft: {m:.1f} ms/step, {tok:.0f} tok/s, peak {peak:.2f} GiB allocated (max_memory_allocated)")
    print(f"RESULT peft_ms={m:.1f} peft_tok_s={tok:.0f} peft_peak_gib={peak:.2f}")


if __name__ == "__main__":
    main()
