#!/usr/bin/env bash
# Makes the Python environment the bundle check runs exported bundles in: a venv (default
# .venv-hf in the repository root, or $PEFC_HF_VENV) holding accelerate/requirements.txt.
# Does nothing when the venv already has those versions. Exits 3 when pip cannot get them
# (no package index reachable), so callers can tell that from a broken install.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PEFC_HF_VENV:-.venv-hf}"
req=accelerate/requirements.txt
want=$(grep -E '^[a-z]' "$req" | sort)
if [ -x "$venv/bin/python" ]; then
  have=$("$venv/bin/python" -m pip freeze 2>/dev/null | sed 's/+cpu$//' | sort)
  if [ -z "$(comm -23 <(echo "$want") <(echo "$have"))" ]; then
    echo "$venv: has $(echo "$want" | tr '\n' ' ')"
    exit 0
  fi
fi
python3 -m venv "$venv"
# One retry: where only a local index or wheel folder answers (pip's config names it), pip's
# default of 5 retries with back-off spends minutes on the unreachable default index.
pip=("$venv/bin/python" -m pip --retries 1)
if ! "${pip[@]}" download --no-deps -q -d "$venv/.probe" peft==0.21.0 >/dev/null 2>&1; then
  echo "accelerate/setup.sh: pip cannot download peft 0.21.0 here (no package index reachable): the bundle check cannot run" >&2
  exit 3
fi
rm -rf "$venv/.probe"
"${pip[@]}" install -q -r "$req" 2>&1 | grep -vE '^WARNING: (Retrying|Location)' >&2 || true
"$venv/bin/python" -c 'import torch, transformers, peft, accelerate' || { echo "accelerate/setup.sh: the install into $venv failed" >&2; exit 1; }
echo "$venv: installed $(echo "$want" | tr '\n' ' ')"
