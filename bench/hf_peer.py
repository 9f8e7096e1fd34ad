#!/usr/bin/env python3
"""The transformers + PEFT peer of `npm run bench -- --train`: the tool a user would pick instead
of pefc, on the same shapes as pefc's bench step. The model is transformers' own
LlamaForCausalLM or GPT2LMHeadModel built from the config (random weights, float32, SDPA
attention), LoRA comes from PEFT's get_peft_model, and a step is the causal-LM loss, backward,
clip_grad_norm_(1.0) and torch.optim.AdamW, as a plain training loop runs it.

    python3 hf_peer.py CONFIG.json    prints {"ms": [...], "cpu_ms": [...], "threads": n, "torch": "...", ...}

Config: as bench/torch_peer.py's (model "llama" | "gpt2", the Hugging Face config fields, batch,
seq, rank, alpha, steps timed after one warm-up step, threads).
"""

import json
import sys

import torch

from peer_timing import time_steps


def main():
    c = json.load(open(sys.argv[1]))
    torch.set_num_threads(int(c.get("threads", 2)))
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = {k: v for k, v in c.items() if k not in ("model", "batch", "seq", "rank", "alpha", "steps", "threads")}
    model_type = fields.pop("model_type", c["model"])
    # pefc's step and torch_peer.py's have no dropout in the base model: neither has this one.
    for k in ("attn_pdrop", "embd_pdrop", "resid_pdrop", "summary_first_dropout", "attention_dropout"):
        if k in fields:
            fields[k] = 0.0
    config = AutoConfig.for_model(model_type, **fields)
    config._attn_implementation = "sdpa"
    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    targets = ["q_proj", "v_proj"] if c["model"] == "llama" else ["c_attn"]
    model = get_peft_model(model, LoraConfig(r=int(c["rank"]), lora_alpha=int(c["alpha"]), lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(3, int(c["vocab_size"]), (int(c["batch"]), int(c["seq"])), generator=gen)

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    ms, cpu_ms = time_steps(step, int(c["steps"]))
    print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "threads": torch.get_num_threads(), "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}))


if __name__ == "__main__":
    main()
