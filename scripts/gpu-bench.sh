#!/usr/bin/env bash
# pefc on a real GPU beside PyTorch + PEFT on the same GPU. Prints the adapter, matmul TFLOP/s
# (f32 and f16 weights, which subgroup features the adapter offers), linear_fused against the two
# matmuls it replaces, and a ChatGLM2-6B-shaped AdaLoRA step's tokens/s and peak memory from pefc
# (bench/gpu.ts) and from PyTorch + PEFT (bench/peft_gpu_peer.py). Copy the numbers into
# bench/RESULTS.md with the device name and the date.
#
#   scripts/gpu-bench.sh [--layers N] [--batch B] [--seq T] [--steps S]
#
# Needs: Node >= 20 (on PATH, or $PEFC_NODE, or unpacked at .carry/node/bin/node from the
# official linux-x64 .tar.xz), the repository's node_modules (npm ci; or .carry/node_modules.tar.xz
# made here with `tar -cJf .carry/node_modules.tar.xz node_modules`), a Vulkan driver for the GPU
# (the NVIDIA ICD: set VK_DRIVER_FILES if the loader does not find it), and python3 with torch,
# transformers and peft for the peer. Either half runs without the other.
set -u
cd "$(dirname "$0")/.."
ARGS=("$@")

NODE="${PEFC_NODE:-}"
if [ -z "$NODE" ]; then
  if [ -x .carry/node/bin/node ]; then NODE=.carry/node/bin/node
  elif command -v node >/dev/null 2>&1; then NODE=$(command -v node)
  fi
fi
if [ ! -d node_modules ] && [ -f .carry/node_modules.tar.xz ]; then
  echo "unpacking .carry/node_modules.tar.xz"
  tar -xJf .carry/node_modules.tar.xz || { echo "gpu-bench: could not unpack node_modules" >&2; }
fi

echo "== machine"
date -u +"date: %Y-%m-%dT%H:%M:%SZ"
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
elif command -v rocm-smi >/dev/null 2>&1; then rocm-smi --showproductname | grep -i card | head -2
else echo "no nvidia-smi or rocm-smi: the adapter Dawn picks is printed below"
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

status=0
echo
echo "== pefc (WebGPU through Dawn)"
if [ -z "$NODE" ]; then
  echo "skipped: no Node (put it on PATH, set PEFC_NODE, or unpack it at .carry/node)"; status=1
elif [ ! -f node_modules/tsx/dist/cli.mjs ]; then
  echo "skipped: no node_modules (run npm ci, or carry .carry/node_modules.tar.xz)"; status=1
else
  "$NODE" --version
  "$NODE" node_modules/tsx/dist/cli.mjs bench/gpu.ts "${ARGS[@]}" 2>&1 | grep -v "artificially reduced" || status=1
fi

echo
echo "== PyTorch + PEFT on the same GPU"
PY="${PEFC_BENCH_PYTHON:-python3}"
if "$PY" -c "import torch, transformers, peft; assert torch.cuda.is_available()" 2>/dev/null; then
  PYTHONUNBUFFERED=1 "$PY" bench/peft_gpu_peer.py "${ARGS[@]}" || status=1
else
  echo "skipped: $PY lacks torch with CUDA, transformers or peft"; status=1
fi
exit $status
