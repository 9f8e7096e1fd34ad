"""Rewrites an adapter_model.safetensors as the adapter_model.bin PEFT's
save_pretrained(safe_serialization=False) writes: torch.save of the same state dict, same keys.

usage: to-torch-bin.py JOBS   (JSON: a list of {"src", "dst", "strided"?, "scale"?, "legacy"?},
done in one process since importing torch takes seconds)
  strided  store every 2-D matrix (no dimension of 1) as a transposed view of a column-major storage (same values)
  scale    multiply every tensor by this (a file whose values differ from src's)
  legacy   torch.save's pre-1.6 format (_use_new_zipfile_serialization=False)
  foreign  add an entry that is no tensor but a datetime.date, a global a state dict never names

The safetensors file is parsed here by hand (Debian has no python3-safetensors): an 8-byte
little-endian header length, the JSON header, then the tensors' bytes.
"""
import datetime
import json
import struct
import sys
from collections import OrderedDict

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        start, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[e["dtype"]]) if end > start else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def convert(job):
    state = read_safetensors(job["src"])
    for k, t in state.items():
        if job.get("scale") is not None:
            t = t * job["scale"]
        if job.get("strided") and t.dim() == 2 and min(t.shape) > 1:
            t = t.t().contiguous().t()
            assert not t.is_contiguous()
        state[k] = t
    if job.get("foreign"):
        state["saved_on"] = datetime.date(2024, 1, 1)
    torch.save(state, job["dst"], _use_new_zipfile_serialization=not job.get("legacy", False))


for job in json.loads(sys.argv[1]):
    convert(job)
