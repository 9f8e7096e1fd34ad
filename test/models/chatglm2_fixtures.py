#!/usr/bin/env python3
"""Writes the test fixtures for reading PyTorch checkpoints and SentencePiece tokenizers, with the
real tools: Debian's torch (torch.save, zip format) and python3-sentencepiece.

    python3 chatglm2_fixtures.py OUT_DIR REPO_ROOT

OUT_DIR/chatglm2/       a tiny ChatGLM2 in the layout THUDM publishes chatglm2-6b in: config.json
                        (auto_map, torch_dtype float16), 7 bf16 shards pytorch_model-0000N-of-00007.bin
                        split greedily by a small max_shard_size, pytorch_model.bin.index.json,
                        tokenizer.model (trained here on the examples' texts, byte fallback) and
                        tokenizer_config.json (ChatGLMTokenizer, left padding)
OUT_DIR/chatglm2-st/    the same tensors, read back with torch.load, as model.safetensors + config.json
OUT_DIR/views.bin       tensors that are views: transposed, offset into a shared storage, f16/bf16/f32
OUT_DIR/views.json      their values as torch reads them (the oracle)
OUT_DIR/evil.bin        a torch.save whose pickle names builtins.print
OUT_DIR/legacy.bin      torch.save(..., _use_new_zipfile_serialization=False)
OUT_DIR/complex.bin     a complex64 tensor
OUT_DIR/short-entry.bin views.bin rewritten with one storage entry cut short (a valid zip)
OUT_DIR/deflated.bin    views.bin rewritten with deflate-compressed entries
OUT_DIR/tokenizer.json  ids and decodes of the examples' texts by python sentencepiece, for
                        ../shared/models/stories260K/tok512.model and the ChatGLM2 tokenizer.model
"""

import collections
import json
import os
import struct
import sys
import zipfile

import sentencepiece as spm
import torch

OUT, ROOT = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)
gen = torch.Generator().manual_seed(13)


def texts():
    """Every prompt and response string in examples/data, in file order."""
    out = []
    data = os.path.join(ROOT, "examples", "data")
    for name in sorted(os.listdir(data)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(data, name), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                for v in rec.values():
                    if isinstance(v, str) and v:
                        out.append(v)
    return out


TEXTS = texts()

# --- SentencePiece model for the ChatGLM2 fixture ---------------------------------------------
chatglm = os.path.join(OUT, "chatglm2")
os.makedirs(chatglm, exist_ok=True)
corpus = os.path.join(OUT, "corpus.txt")
with open(corpus, "w", encoding="utf-8") as f:
    f.write("\n".join(TEXTS) + "\n")
spm.SentencePieceTrainer.train(
    input=corpus,
    model_prefix=os.path.join(chatglm, "tokenizer"),
    model_type="bpe",
    vocab_size=1000,
    byte_fallback=True,
    character_coverage=0.98,
    hard_vocab_limit=False,
    split_digits=True,
    minloglevel=2,
)
os.remove(os.path.join(chatglm, "tokenizer.vocab"))
sp = spm.SentencePieceProcessor(model_file=os.path.join(chatglm, "tokenizer.model"))
n_words = sp.vocab_size()
SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop"]
padded_vocab = (n_words + len(SPECIALS) + 7) // 8 * 8

with open(os.path.join(chatglm, "tokenizer_config.json"), "w") as f:
    json.dump(
        {
            "name_or_path": "THUDM/chatglm2-6b",
            "remove_space": False,
            "do_lower_case": False,
            "tokenizer_class": "ChatGLMTokenizer",
            "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]},
            "padding_side": "left",
        },
        f,
        indent=2,
    )

# --- the tiny ChatGLM2 checkpoint ---------------------------------------------------------------
H, LAYERS, HEADS, KV, GROUPS, FFN = 64, 2, 4, 16, 2, 96
config = {
    "_name_or_path": "THUDM/chatglm2-6b",
    "model_type": "chatglm",
    "architectures": ["ChatGLMModel"],
    "auto_map": {
        "AutoConfig": "configuration_chatglm.ChatGLMConfig",
        "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
        "AutoModelForSeq2SeqLM": "modeling_chatglm.ChatGLMForConditionalGeneration",
    },
    "add_bias_linear": False,
    "add_qkv_bias": True,
    "apply_query_key_layer_scaling": True,
    "apply_residual_connection_post_layernorm": False,
    "attention_dropout": 0.0,
    "attention_softmax_in_fp32": True,
    "bias_dropout_fusion": True,
    "ffn_hidden_size": FFN,
    "fp32_residual_connection": False,
    "hidden_dropout": 0.0,
    "hidden_size": H,
    "kv_channels": KV,
    "layernorm_epsilon": 1e-05,
    "multi_query_attention": True,
    "multi_query_group_num": GROUPS,
    "num_attention_heads": HEADS,
    "num_layers": LAYERS,
    "original_rope": True,
    "padded_vocab_size": padded_vocab,
    "post_layer_norm": True,
    "rmsnorm": True,
    "seq_length": 512,
    "use_cache": True,
    "torch_dtype": "float16",
    "transformers_version": "4.27.1",
    "tie_word_embeddings": False,
    "eos_token_id": 2,
    "pad_token_id": 0,
}
with open(os.path.join(chatglm, "config.json"), "w") as f:
    json.dump(config, f, indent=2)


def rand(*shape, scale=0.08):
    return (torch.randn(*shape, generator=gen) * scale).bfloat16()


state = collections.OrderedDict()
state["transformer.embedding.word_embeddings.weight"] = rand(padded_vocab, H, scale=0.5)
qkv = HEADS * KV + 2 * GROUPS * KV
for i in range(LAYERS):
    p = f"transformer.encoder.layers.{i}."
    state[p + "input_layernorm.weight"] = (1 + torch.randn(H, generator=gen) * 0.1).bfloat16()
    state[p + "self_attention.query_key_value.weight"] = rand(qkv, H)
    state[p + "self_attention.query_key_value.bias"] = rand(qkv, scale=0.02)
    state[p + "self_attention.dense.weight"] = rand(H, HEADS * KV)
    state[p + "post_attention_layernorm.weight"] = (1 + torch.randn(H, generator=gen) * 0.1).bfloat16()
    state[p + "mlp.dense_h_to_4h.weight"] = rand(2 * FFN, H)
    state[p + "mlp.dense_4h_to_h.weight"] = rand(H, FFN)
state["transformer.encoder.final_layernorm.weight"] = (1 + torch.randn(H, generator=gen) * 0.1).bfloat16()
state["transformer.output_layer.weight"] = rand(padded_vocab, H)
rot = KV // 2
state["transformer.rotary_pos_emb.inv_freq"] = (1.0 / (10000 ** (torch.arange(0, rot, 2).float() / rot))).bfloat16()


def nbytes(t):
    return t.numel() * t.element_size()


def shard(sd, max_size):
    """Greedy, in order, as transformers' shard_checkpoint: a new shard when the next tensor would overflow."""
    shards, cur, size = [], collections.OrderedDict(), 0
    for k, v in sd.items():
        if cur and size + nbytes(v) > max_size:
            shards.append(cur)
            cur, size = collections.OrderedDict(), 0
        cur[k] = v
        size += nbytes(v)
    shards.append(cur)
    return shards


max_size = next(m for m in range(sum(map(nbytes, state.values())), 0, -256) if len(shard(state, m)) >= 7)
shards = shard(state, max_size)
assert len(shards) == 7, len(shards)
weight_map = {}
for i, s in enumerate(shards):
    name = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
    torch.save(s, os.path.join(chatglm, name))
    for k in s:
        weight_map[k] = name
with open(os.path.join(chatglm, "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": sum(map(nbytes, state.values()))}, "weight_map": weight_map}, f, indent=2)


# --- the safetensors twin, from what torch.load reads back ---------------------------------------
def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    codes = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}
    for k, v in tensors.items():
        raw = v.contiguous().view(torch.int16).numpy().tobytes() if v.dtype == torch.bfloat16 else v.contiguous().numpy().tobytes()
        header[k] = {"dtype": codes[v.dtype], "shape": list(v.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


twin = os.path.join(OUT, "chatglm2-st")
os.makedirs(twin, exist_ok=True)
loaded = collections.OrderedDict()
for name in sorted(set(weight_map.values())):
    loaded.update(torch.load(os.path.join(chatglm, name)))
assert list(loaded) == list(state) and all(torch.equal(loaded[k], state[k]) for k in state)
write_safetensors(os.path.join(twin, "model.safetensors"), loaded)
with open(os.path.join(twin, "config.json"), "w") as f:
    json.dump(config, f, indent=2)

# --- views and bad files ------------------------------------------------------------------------
base = torch.randn(8, 6, generator=gen)
half_storage = torch.randn(10, generator=gen).half()
views = collections.OrderedDict()
views["plain_bf16"] = torch.randn(3, 5, generator=gen).bfloat16()
views["transposed_f32"] = base.t()  # [6, 8], strides (1, 6)
views["rows_f32"] = base[2:5]  # offset 12 into the same storage, contiguous
views["every_other_f32"] = base[:, ::2]  # strides (6, 2)
views["slice_f16"] = half_storage[3:7]  # offset 3
views["scalar_f32"] = torch.tensor(1.5)
views["step"] = torch.tensor([7, 8, 9], dtype=torch.int64)
torch.save(views, os.path.join(OUT, "views.bin"))
with open(os.path.join(OUT, "views.json"), "w") as f:
    json.dump(
        {
            k: {
                "shape": list(v.shape),
                "values": v.float().flatten().tolist(),
                # torch's own rounding to half precision, as bits: the oracle for reading as f16
                "f16_bits": (v.half().contiguous().view(torch.int16).flatten().int() & 0xFFFF).tolist() if v.is_floating_point() else [],
            }
            for k, v in views.items()
        },
        f,
    )


class Evil:
    def __reduce__(self):
        return (print, ("a checkpoint should not be able to call this",))


torch.save(collections.OrderedDict(w=torch.zeros(2), hook=Evil()), os.path.join(OUT, "evil.bin"))
torch.save(collections.OrderedDict(w=torch.zeros(2)), os.path.join(OUT, "legacy.bin"), _use_new_zipfile_serialization=False)
torch.save(collections.OrderedDict(w=torch.zeros(2, dtype=torch.complex64)), os.path.join(OUT, "complex.bin"))


def rewrite(src, dst, cut=None, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compress) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if cut is not None and info.filename.endswith(cut):
                data = data[: len(data) // 2]
            zout.writestr(info.filename, data)


rewrite(os.path.join(OUT, "views.bin"), os.path.join(OUT, "short-entry.bin"), cut="/data/0")
rewrite(os.path.join(OUT, "views.bin"), os.path.join(OUT, "deflated.bin"), compress=zipfile.ZIP_DEFLATED)

# --- the tokenizer oracle -----------------------------------------------------------------------
stories = spm.SentencePieceProcessor(model_file=os.path.join(ROOT, "..", "shared", "models", "stories260K", "tok512.model"))
extra = ["Hello world", "sop eop [gMASK] mixed with 问：答：", "  two  spaces\tand a tab\n", "数字 12345 and ½ ✓ 🙂", ""]
samples = TEXTS + extra


def oracle(proc, chatglm=False):
    out = []
    for t in samples:
        ids = proc.encode(t)
        pieces = proc.encode(t, out_type=str)
        case = {"text": t, "ids": ids, "pieces": pieces, "decoded": proc.decode(ids)}
        if chatglm:
            # ChatGLM2's tokenizer: pieces to ids, a piece spelled like a special taking its id,
            # after build_inputs_with_special_tokens' [gMASK] sop.
            n = proc.vocab_size()
            case["chatglm_ids"] = [n + 1, n + 3] + [n + SPECIALS.index(p) if p in SPECIALS else proc.piece_to_id(p) for p in pieces]
        out.append(case)
    return out


def chatglm_encode(text, special):
    """ChatGLMTokenizer.encode: pieces to ids, specials by their spelling, [gMASK] sop first."""
    ids = [n_words + SPECIALS.index(p) if p in SPECIALS else sp.piece_to_id(p) for p in sp.encode(text, out_type=str)]
    return [n_words + 1, n_words + 3] + ids if special else ids


def build_prompt(query, history):
    """ChatGLM2's ChatGLMTokenizer.build_prompt."""
    prompt = ""
    for i, (old_query, response) in enumerate(history):
        prompt += "[Round {}]\n\n问：{}\n\n答：{}\n\n".format(i + 1, old_query, response)
    prompt += "[Round {}]\n\n问：{}\n\n答：".format(len(history) + 1, query)
    return prompt


# ChatGLM2-6B's ptuning/main.py preprocess_function_train on the first medical records
# (max_source_length 128, max_target_length 256: no record here is cut).
medical = []
with open(os.path.join(ROOT, "examples", "data", "medical.jsonl"), encoding="utf-8") as f:
    for line in list(f)[:4]:
        rec = json.loads(line)
        a_ids = chatglm_encode(build_prompt(rec["ask"], []), True)[:128]
        b_ids = chatglm_encode(rec["answer"], False)[:256]
        input_ids = a_ids + b_ids + [sp.eos_id()]
        labels = [-100] * len(a_ids) + b_ids + [sp.eos_id()]
        medical.append({"input_ids": input_ids, "labels": labels})

with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(
        {
            "stories": {"bos": stories.bos_id(), "eos": stories.eos_id(), "n": stories.vocab_size(), "cases": oracle(stories)},
            "chatglm2": {"bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "n": n_words, "cases": oracle(sp, chatglm=True)},
            "medical": medical,
        },
        f,
        ensure_ascii=False,
    )
os.remove(corpus)
print(json.dumps({"n_words": n_words, "padded_vocab_size": padded_vocab, "max_shard_size": max_size, "shards": len(shards)}))
