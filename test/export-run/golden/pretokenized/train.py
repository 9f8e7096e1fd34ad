"""Fine-tune pretokenized.peft with Hugging Face transformers + PEFT + Accelerate.

Exported by `pefc export-run` for the deepspeed engine. The run is the one pefc checked: the same
base model, the same PEFT config, the same examples in the same order (data_pipeline.py), the same
optimizer, learning-rate schedule, warm-up, clipping and accumulation, evaluated and saved at the
same steps. Adapters are saved in PEFT's layout; pefc reads them back (`pefc generate --adapter`,
`pefc merge`, `init from`).

    accelerate launch --config_file accelerate.yaml train.py     # see launch.sh and README.md

Edit freely: the settings below are plain values.
"""

import contextlib
import dataclasses
import math
import os
import re
import shutil
import sys

import peft
import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import DistributedType
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM

import data_pipeline

HERE = os.path.dirname(os.path.abspath(__file__))

# The base model: a Hugging Face folder (config.json + weights). BASE_MODEL_NAME is what the
# saved adapter_config.json names as its base, as pefc wrote it. ${NAME} in either is the
# environment variable NAME, read when train.py starts (see model_path).
BASE_MODEL = os.path.join(HERE, "base_model")
BASE_MODEL_NAME = "builtin:tiny-llama"
TRUST_REMOTE_CODE = False

# The adapter training starts from, in PEFT's layout: pefc's own initial values (so both runs
# start from the same numbers) or the spec's `init from` adapter. None starts from PEFT's init.
START_ADAPTER = "start"

SEED = 42
LR = 0.003
OPTIMIZER = {"kind": "adamw", "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0}
SCHEDULE = "linear"  # constant, linear or cosine, after the warm-up
WARMUP = {"steps": 0}  # {"steps": N} or {"share": fraction of all steps}
CLIP = 1.0  # max global gradient norm; 0 = no clipping
LOG_EVERY = {"every": 5, "unit": "steps"}
EVAL_EVERY = {"every": 1, "unit": "epochs"}
# Periodic saves write DIR/checkpoint-STEP (keeping the newest `keep`); others write DIR at the end.
SAVES = [{"dir": "output/pretokenized", "every": {"every": 20, "unit": "steps"}, "keep": 2}]
EXPORT_ADAPTER = []
ADALORA = False


def peft_config():
    """The PEFT config pefc writes into adapter_config.json for this run, in training mode."""
    return make_config(LoraConfig, {
        "alpha_pattern": {},
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "r": 4,
        "rank_pattern": {},
        "target_modules": ["q_proj", "v_proj"],
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
        "inference_mode": False,
    })


def make_config(cls, settings):
    """cls(**settings), leaving out fields the installed PEFT's config class does not have."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        print(f"note: {cls.__name__} of peft {peft.__version__} has no {', '.join(unknown)}; left out")
    return cls(**{k: v for k, v in settings.items() if k in known})


def warmup_steps(total):
    return WARMUP["steps"] if "steps" in WARMUP else math.ceil(WARMUP["share"] * total)


def lr_at(step, total):
    """The learning rate of optimizer step `step` (0-based): linear warm-up from 0, then the schedule to 0."""
    warm = warmup_steps(total)
    if step < warm:
        return LR * step / max(1, warm)
    if SCHEDULE == "constant":
        return LR
    if SCHEDULE == "linear":
        return LR * max(0.0, (total - step) / max(1, total - warm))
    progress = (step - warm) / max(1, total - warm)
    return LR * max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(params):
    o = OPTIMIZER
    if o["kind"] == "adamw":
        return torch.optim.AdamW(params, lr=LR, betas=o["betas"], eps=o["eps"], weight_decay=o["weight_decay"])
    if o["kind"] == "adam":
        return torch.optim.Adam(params, lr=LR, betas=o["betas"], eps=o["eps"], weight_decay=o["weight_decay"])
    return torch.optim.SGD(params, lr=LR, momentum=o["momentum"], nesterov=o["nesterov"], weight_decay=o["weight_decay"])


def due(period, step, epoch_ended):
    if period["unit"] == "steps":
        return step % period["every"] == 0
    return epoch_ended is not None and epoch_ended % period["every"] == 0


def model_path(path):
    """path with each ${NAME} replaced by the environment variable NAME, as pefc reads a .peft
    file's model path; an unset or empty variable stops the run."""

    def value(m):
        v = os.environ.get(m.group(1), "")
        if v == "":
            sys.exit(f"error: the model path {path!r} names the environment variable {m.group(1)}, which is not set; point it at the model folder")
        return v

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, path)


def load_base_model():
    kwargs = {"trust_remote_code": TRUST_REMOTE_CODE}
    # transformers 4.56 renamed torch_dtype to dtype; float32 so the run matches pefc's numerics
    # (Accelerate's mixed precision, when asked for, casts on top).
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    kwargs["dtype" if (major, minor) >= (4, 56) else "torch_dtype"] = torch.float32
    return AutoModelForCausalLM.from_pretrained(model_path(BASE_MODEL), **kwargs)


def load_start(model):
    """Loads START_ADAPTER into the fresh PEFT model.

    A prompt encoder (prefix tuning with its MLP, P-tuning) is loaded whole from
    prompt_encoder.safetensors: PEFT's adapter file holds only the encoder's output, which
    training cannot continue from. Every other method loads adapter_model.safetensors."""
    folder = os.path.join(HERE, START_ADAPTER)
    encoder = os.path.join(folder, "prompt_encoder.safetensors")
    if os.path.exists(encoder):
        model.prompt_encoder["default"].load_state_dict(load_file(encoder), strict=True)
        return
    result = set_peft_model_state_dict(model, load_file(os.path.join(folder, "adapter_model.safetensors")))
    missing = [k for k in result.missing_keys if "lora_" in k or "ia3_" in k]
    if missing:
        sys.exit(f"{folder}: the start adapter lacks {missing[:4]}")


def gathered(accelerator, params):
    """Under ZeRO-3 each process holds a shard of every weight: gather the adapter's to save it."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None and plugin.zero_stage == 3:
        import deepspeed

        return deepspeed.zero.GatheredParameters(params)
    return contextlib.nullcontext()


def to_tensors(batch):
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def first(items):
    return items[0]


def main():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    run = data_pipeline.RunData(os.path.join(HERE, "data_config.json"))
    # Each process takes every world-th micro-batch; accumulating grad_accum / world of them per
    # process keeps pefc's effective batch (batch x grad_accum) and its step count.
    accum = run.grad_accum // world if run.grad_accum % world == 0 else run.grad_accum
    accelerator = Accelerator(gradient_accumulation_steps=accum)
    if accum == run.grad_accum and world > 1:
        accelerator.print(f"note: grad_accum {run.grad_accum} does not divide by {world} processes; the effective batch is {world}x pefc's")
    torch.manual_seed(SEED)
    model = load_base_model()
    model = get_peft_model(model, peft_config())
    model.peft_config["default"].base_model_name_or_path = model_path(BASE_MODEL_NAME)
    if START_ADAPTER is not None:
        load_start(model)
    if accelerator.is_main_process:
        model.print_trainable_parameters()

    engine = accelerator.distributed_type
    if engine == DistributedType.FSDP:
        # use_orig_params is false: trainable and frozen weights must sit in separate FSDP units.
        from peft.utils.other import fsdp_auto_wrap_policy

        accelerator.state.fsdp_plugin.auto_wrap_policy = fsdp_auto_wrap_policy(model)
    if engine == DistributedType.DEEPSPEED:
        optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad])
        model, optimizer = accelerator.prepare(model, optimizer)
    else:
        # FSDP flattens parameters when it wraps the model: the optimizer is built on what it made.
        model = accelerator.prepare(model)
        optimizer = accelerator.prepare(make_optimizer([p for p in model.parameters() if p.requires_grad]))
    trainable = [p for p in model.parameters() if p.requires_grad]

    total = run.total_steps
    accelerator.print(f"{len(run.train)} train examples, {len(run.eval or [])} eval; {total} optimizer steps ({run.steps_per_epoch} per epoch) on {world} process(es)")

    def evaluate():
        if not run.eval:
            return None
        model.eval()
        loss_sum = 0.0
        count = 0
        with torch.no_grad():
            for b in run.eval_batches():
                t = {k: v.to(accelerator.device) for k, v in to_tensors(b).items()}
                n = int((t["labels"][:, 1:] != data_pipeline.IGNORE_INDEX).sum())
                if n == 0:
                    continue
                loss_sum += float(model(**t).loss) * n
                count += n
        model.train()
        return loss_sum / count if count else None

    def save(folder):
        state = accelerator.get_state_dict(model)  # gathers ZeRO-3 / FSDP shards; call on every process
        with gathered(accelerator, trainable):
            # save_embedding_layers=False: pefc never resizes the vocabulary, so PEFT need not look for
            # the base model's config to find out (BASE_MODEL_NAME may be relative or builtin:).
            accelerator.unwrap_model(model).save_pretrained(
                folder, is_main_process=accelerator.is_main_process, state_dict=state, save_embedding_layers=False
            )
        accelerator.wait_for_everyone()
        accelerator.print(f"saved {folder} at step {step}")

    def rotate(root, keep):
        if not accelerator.is_main_process or keep is None:
            return
        steps = sorted(int(n.split("-")[1]) for n in os.listdir(root) if n.startswith("checkpoint-") and n.split("-")[1].isdigit())
        for s in steps[: max(0, len(steps) - keep)]:
            shutil.rmtree(os.path.join(root, f"checkpoint-{s}"), ignore_errors=True)

    model.train()
    step = 0
    epoch = 0
    window_loss = 0.0
    window_steps = 0
    step_loss = 0.0
    group_size = 0
    saved_at = set()
    while step < total:
        loader = accelerator.prepare_data_loader(DataLoader([to_tensors(b) for b in run.epoch(epoch)], batch_size=1, collate_fn=first))
        for i, batch in enumerate(loader):
            # Set before backward: under DeepSpeed the engine steps inside accelerator.backward.
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total)
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                step_loss += float(loss.detach())
                group_size += 1
                if accelerator.sync_gradients:
                    if CLIP > 0:
                        accelerator.clip_grad_norm_(trainable, CLIP)
                    optimizer.step()
                    if ADALORA:
                        # PEFT's rank allocation, with the 0-based step, after the update and
                        # before the gradients are cleared.
                        accelerator.unwrap_model(model).base_model.update_and_allocate(step)
                    optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            lr = lr_at(step, total)
            step += 1
            epoch_ended = epoch + 1 if i == len(loader) - 1 else None
            # Each process saw its share of the step's micro-batches: the step's loss is their mean.
            window_loss += float(accelerator.reduce(torch.tensor(step_loss / group_size, device=accelerator.device), reduction="mean"))
            window_steps += 1
            step_loss = 0.0
            group_size = 0
            last = step == total
            if due(LOG_EVERY, step, epoch_ended) or last or step == 1:
                accelerator.print(f"step {step}/{total}  loss {window_loss / window_steps:.4f}  lr {lr:.3e}")
                window_loss = 0.0
                window_steps = 0
            if due(EVAL_EVERY, step, epoch_ended) or (last and EVAL_EVERY["unit"] == "epochs" and epoch_ended is None):
                e = evaluate()
                if e is not None:
                    accelerator.print(f"eval at step {step}: loss {e:.4f}  perplexity {math.exp(e):.3f}")
            for sv in SAVES:
                if sv["every"] is None:
                    continue
                if due(sv["every"], step, epoch_ended) or (last and (sv["dir"], step) not in saved_at):
                    root = os.path.join(HERE, sv["dir"])
                    save(os.path.join(root, f"checkpoint-{step}"))
                    saved_at.add((sv["dir"], step))
                    rotate(root, sv["keep"])
            if last:
                break
        epoch += 1
    for sv in SAVES:
        if sv["every"] is None:
            save(os.path.join(HERE, sv["dir"]))
    for folder in EXPORT_ADAPTER:
        save(os.path.join(HERE, folder))
    accelerator.end_training()


if __name__ == "__main__":
    main()
