#!/usr/bin/env bash
# Launches train.py with Accelerate (DeepSpeed ZeRO-3), as accelerate.yaml describes it:
# 1 GPU(s) per node x 1 node(s) = 1 processes. Written by `pefc export-run`.
#
# One node: bash launch.sh
# Several nodes: run this on every node, the same command, with
#   MACHINE_RANK       0 on the main node, 1..M-1 on the others (written for 1 node: add --num_machines M)
#   MAIN_PROCESS_IP    the main node's address, reachable from every node
#   MAIN_PROCESS_PORT  a free TCP port on the main node (default 29500)
# e.g. MACHINE_RANK=1 MAIN_PROCESS_IP=10.0.0.1 bash launch.sh
# Extra arguments go to `accelerate launch` (e.g. --num_processes 4 to change the GPU count).
set -euo pipefail
cd "$(dirname "$0")"
args=(--config_file accelerate.yaml)
if [ -n "${MACHINE_RANK:-}" ]; then args+=(--machine_rank "$MACHINE_RANK"); fi
if [ -n "${MAIN_PROCESS_IP:-}" ]; then args+=(--main_process_ip "$MAIN_PROCESS_IP"); fi
if [ -n "${MAIN_PROCESS_PORT:-}" ]; then args+=(--main_process_port "$MAIN_PROCESS_PORT"); fi
exec accelerate launch "${args[@]}" "$@" train.py
