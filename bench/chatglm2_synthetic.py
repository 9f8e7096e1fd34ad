#!/usr/bin/env python3
"""A synthetic ChatGLM2 checkpoint of chatglm2-6b's real width for the load benchmark (bench/load.ts):
hidden 4096, ffn 13696, 2 kv groups, vocab 65024, 2 layers, bf16, saved by torch.save in 3 shards
(greedy by a 900 MB max_shard_size, as transformers shards) with pytorch_model.bin.index.json.

    python3 chatglm2_synthetic.py OUT_DIR CONFIG_JSON
"""

import collections
import json
import os
import sys

import torch

out, config_path = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(config_path) as f:
    config = json.load(f)
config["num_layers"] = 2
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)

H, FFN, V = config["hidden_size"], config["ffn_hidden_size"], config["padded_vocab_size"]
KV, HEADS, G = config["kv_channels"], config["num_attention_heads"], config["multi_query_group_num"]
torch.manual_seed(0)


def w(*shape):
    return torch.empty(*shape, dtype=torch.bfloat16).uniform_(-0.05, 0.05)


state = collections.OrderedDict()
state["transformer.embedding.word_embeddings.weight"] = w(V, H)
for i in range(config["num_layers"]):
    p = f"transformer.encoder.layers.{i}."
    state[p + "input_layernorm.weight"] = torch.ones(H, dtype=torch.bfloat16)
    state[p + "self_attention.query_key_value.weight"] = w(HEADS * KV + 2 * G * KV, H)
    state[p + "self_attention.query_key_value.bias"] = w(HEADS * KV + 2 * G * KV)
    state[p + "self_attention.dense.weight"] = w(H, HEADS * KV)
    state[p + "post_attention_layernorm.weight"] = torch.ones(H, dtype=torch.bfloat16)
    state[p + "mlp.dense_h_to_4h.weight"] = w(2 * FFN, H)
    state[p + "mlp.dense_4h_to_h.weight"] = w(H, FFN)
state["transformer.encoder.final_layernorm.weight"] = torch.ones(H, dtype=torch.bfloat16)
state["transformer.output_layer.weight"] = w(V, H)
state["transformer.rotary_pos_emb.inv_freq"] = (1.0 / (10000 ** (torch.arange(0, KV // 2, 2).float() / (KV // 2)))).bfloat16()

MAX = 900 * 10**6
shards, cur, size = [], collections.OrderedDict(), 0
for k, v in state.items():
    n = v.numel() * v.element_size()
    if cur and size + n > MAX:
        shards.append(cur)
        cur, size = collections.OrderedDict(), 0
    cur[k] = v
    size += n
shards.append(cur)
assert len(shards) == 3, len(shards)
weight_map = {}
for i, s in enumerate(shards):
    name = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
    torch.save(s, os.path.join(out, name))
    weight_map.update({k: name for k in s})
total = sum(v.numel() * v.element_size() for v in state.values())
with open(os.path.join(out, "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
