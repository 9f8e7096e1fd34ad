#!/usr/bin/env python3
"""Writes the base files of the fault suite's .bin cases with the real torch.save (zip format):

    python3 bin_bases.py OUT_DIR

OUT_DIR/model.bin     a state dict: f32, f16 and bf16 weights, a transposed view, two tensors
                      sharing one storage at an offset, an int64 buffer, a 0-element tensor
OUT_DIR/model.json    each tensor's values as torch reads them back (the oracle)
OUT_DIR/shards/       the same state dict in two shards and a pytorch_model.bin.index.json
OUT_DIR/canary-*.bin  state dicts holding an object whose __reduce__ creates a file when the
                      checkpoint is unpickled by torch.load(weights_only=False): os.system,
                      builtins.eval and builtins.exec, each aimed at OUT_DIR/CANARY-*
OUT_DIR/proof.txt     that such a payload is live: a copy aimed at OUT_DIR/proof/made was loaded
                      here with torch.load(weights_only=False) and did create that file
"""

import builtins
import collections
import json
import os
import sys

import torch

OUT = sys.argv[1]
os.makedirs(os.path.join(OUT, "shards"), exist_ok=True)
gen = torch.Generator().manual_seed(29)


def rand(*shape):
    return torch.randn(*shape, generator=gen)


shared = rand(40)
sd = collections.OrderedDict()
sd["embed.weight"] = rand(12, 8)
sd["layers.0.attn.weight"] = rand(8, 6).t()  # a view: stride (1, 6)
sd["layers.0.attn.bias"] = rand(8).half()
sd["layers.0.mlp.weight"] = rand(6, 8).bfloat16()
sd["layers.0.mlp.a"] = shared[4:20].view(4, 4)  # offset 4 into a 40-element storage
sd["layers.0.mlp.b"] = shared[20:40]
sd["layers.1.norm.weight"] = rand(8)
sd["position_ids"] = torch.arange(16, dtype=torch.int64)
sd["empty"] = torch.zeros(0, 8)
torch.save(sd, os.path.join(OUT, "model.bin"))
with open(os.path.join(OUT, "model.json"), "w") as f:
    back = torch.load(os.path.join(OUT, "model.bin"), weights_only=True)
    json.dump({k: v.float().flatten().tolist() for k, v in back.items()}, f)

names = list(sd)
halves = [names[: len(names) // 2], names[len(names) // 2 :]]
weight_map = {}
for i, part in enumerate(halves):
    file = f"pytorch_model-0000{i + 1}-of-00002.bin"
    torch.save(collections.OrderedDict((k, sd[k].clone()) for k in part), os.path.join(OUT, "shards", file))
    weight_map.update({k: file for k in part})
with open(os.path.join(OUT, "shards", "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


class System:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch '{self.path}'",))


class Eval:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.eval, (f"open({self.path!r}, 'w').close()",))


class Exec:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.exec, (f"open({self.path!r}, 'w').close()",))


def evil(payload):
    d = collections.OrderedDict()
    d["embed.weight"] = sd["embed.weight"]
    d["payload"] = payload
    d["layers.1.norm.weight"] = sd["layers.1.norm.weight"]
    return d


for name, cls in [("system", System), ("eval", Eval), ("exec", Exec)]:
    torch.save(evil(cls(os.path.join(OUT, f"CANARY-{name}"))), os.path.join(OUT, f"canary-{name}.bin"))

proof = os.path.join(OUT, "proof")
os.makedirs(proof)
torch.save(evil(System(os.path.join(proof, "made"))), os.path.join(proof, "live.bin"))
torch.load(os.path.join(proof, "live.bin"), weights_only=False)
with open(os.path.join(OUT, "proof.txt"), "w") as f:
    f.write("live\n" if os.path.exists(os.path.join(proof, "made")) else "dead\n")
