#!/usr/bin/env bash
# Install everything and run LoopChat: web (Uvicorn), Celery worker, Celery beat,
# inference workers when INFERENCE_MODE=workers, and a vLLM server when
# INFERENCE_BACKEND=vllm without VLLM_URLS. Each is supervised: one that dies is
# restarted with backoff, and the others run on. Ctrl-C stops them all.
source "$(dirname "$0")/lib.sh"

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

install_python requirements.txt
ensure_redis
"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py prepare_model
login=$("$PY" manage.py ensure_admin)

if [ "${INFERENCE_BACKEND:-local}" = vllm ] && [ -z "${VLLM_URLS:-}" ]; then
  install_vllm
  VLLM_PORT=${VLLM_PORT:-8001}
  VLLM_LOG=${VLLM_LOG:-$DATA_DIR/vllm.log}
  supervise vllm sh -c "exec bash scripts/vllm_server.sh $VLLM_PORT >> '$VLLM_LOG' 2>&1"
  export VLLM_URLS=http://127.0.0.1:$VLLM_PORT
  log "starting vLLM on $VLLM_URLS (42-119 s measured on 2 cores; log: $VLLM_LOG)"
  for _ in $(seq 300); do
    curl -sf "$VLLM_URLS/health" >/dev/null && break
    sleep 1
  done
fi

if [ "${INFERENCE_MODE:-local}" = workers ] && [ -z "${INFERENCE_WORKER_URLS:-}" ]; then
  # Inference workers on ports 8101...; the web side streams from them over HTTP.
  urls=()
  for index in $(seq "${INFERENCE_WORKERS:-1}"); do
    port=$((8100 + index))
    supervise "inference worker $index" "$PY" -m live.inference_worker \
      --host "${INFERENCE_WORKER_HOST:-127.0.0.1}" --port "$port"
    urls+=("http://127.0.0.1:$port")
  done
  INFERENCE_WORKER_URLS=$(IFS=,; echo "${urls[*]}")
  export INFERENCE_WORKER_URLS
fi

# On SIGTERM Uvicorn closes websockets first: replies being written are saved as stopped.
# Its processes (WEB_CONCURRENCY, read by Uvicorn) share one metrics folder, so
# /metrics sums them (prometheus_client's multiprocess mode).
supervise web env PROMETHEUS_MULTIPROC_DIR="$(metrics_dir web)" \
  "$VENV/bin/uvicorn" config.asgi:application --host "$HOST" --port "$PORT" \
  --lifespan off --timeout-graceful-shutdown 30
# Each Celery worker serves its own metrics (WORKER_METRICS_PORT, below; 0 turns it off),
# summing its pool's processes through a folder of its own.
supervise "celery worker" env PROMETHEUS_MULTIPROC_DIR="$(metrics_dir tasks)" \
  WORKER_METRICS_PORT="${TASKS_METRICS_PORT:-9101}" \
  "$VENV/bin/celery" -A config worker -Q celery --loglevel INFO --concurrency 1 -n "tasks@%h"
# Training has its own worker: one run at a time, a fresh process for each. It runs
# niced, so replies keep their speed while a run trains (benchmarks/serving.py).
supervise "training worker" env PROMETHEUS_MULTIPROC_DIR="$(metrics_dir training)" \
  WORKER_METRICS_PORT="${TRAINING_METRICS_PORT:-9102}" \
  nice -n "${TRAINING_NICE:-15}" "$VENV/bin/celery" -A config worker \
  -Q training --loglevel INFO --concurrency 1 --max-tasks-per-child 1 -n "training@%h"
supervise "celery beat" "$VENV/bin/celery" -A config beat --loglevel INFO

sleep 2
log "LoopChat is running at http://$HOST:$PORT/  (admin: http://$HOST:$PORT/admin/)"
log "$login"
log "Ctrl-C stops every process started here; one that dies is restarted."
wait "${CHILDREN[@]}" || true
