// The python of the bundle check's venv (accelerate/setup.sh): $PEFC_HF_PYTHON, or bin/python of
// $PEFC_HF_VENV (default .venv-hf in the repository root). bench/hf_peer.py runs on it too.
import { join, resolve } from "node:path";

export const HF_PYTHON = resolve(process.env["PEFC_HF_PYTHON"] ?? join(process.env["PEFC_HF_VENV"] ?? ".venv-hf", "bin/python"));
