#!/usr/bin/env bash
# Start one vLLM OpenAI-compatible server on the embedded model (or MODEL_DIR),
# ready to hot-load LoopChat's trained versions. Usage: scripts/vllm_server.sh PORT
# Used by `make run` (INFERENCE_BACKEND=vllm without VLLM_URLS) and by the tests.
# It listens on VLLM_HOST (127.0.0.1); its /metrics has vLLM's own vllm:* series.
# docs/operating.md lists every variable.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:?usage: scripts/vllm_server.sh PORT}
VLLM_VENV=${VLLM_VENV:-$PWD/.venv-vllm}
MODEL_DIR=${MODEL_DIR:-$PWD/.cache/models/SmolLM2-135M-Instruct}
# GiB of KV cache; runtime LoRA updating enables /v1/load_lora_adapter.
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-2}
export VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 VLLM_NO_USAGE_STATS=1
# The `vllm` console script looks its metadata up under the wrong name: run the module.
exec "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server \
  --model "$MODEL_DIR" --served-model-name "${VLLM_MODEL:-smollm2}" \
  --host "${VLLM_HOST:-127.0.0.1}" --port "$PORT" \
  --enable-lora --max-lora-rank "${VLLM_MAX_LORA_RANK:-16}" --max-loras "${VLLM_MAX_LORAS:-2}" \
  --max-model-len "${VLLM_MAX_MODEL_LEN:-2048}"
