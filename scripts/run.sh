#!/usr/bin/env bash
# Install everything and run LoopChat: web (Uvicorn), Celery worker, Celery beat,
# and inference workers when INFERENCE_MODE=workers. Ctrl-C stops them all.
source "$(dirname "$0")/lib.sh"

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

install_python requirements.txt
ensure_redis
"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py prepare_model
login=$("$PY" manage.py ensure_admin)

# On SIGTERM Uvicorn closes websockets first: replies being written are saved as stopped.
"$VENV/bin/uvicorn" config.asgi:application --host "$HOST" --port "$PORT" --lifespan off \
  --timeout-graceful-shutdown 30 &
CHILDREN+=($!)
"$VENV/bin/celery" -A config worker -Q celery --loglevel INFO --concurrency 1 -n "tasks@%h" &
CHILDREN+=($!)
# Training has its own worker: one run at a time, a fresh process for each.
"$VENV/bin/celery" -A config worker -Q training --loglevel INFO --concurrency 1 \
  --max-tasks-per-child 1 -n "training@%h" &
CHILDREN+=($!)
"$VENV/bin/celery" -A config beat --loglevel INFO &
CHILDREN+=($!)
if [ "${INFERENCE_MODE:-local}" = workers ]; then
  for _ in $(seq "${INFERENCE_WORKERS:-1}"); do
    "$PY" manage.py runworker "${INFERENCE_CHANNEL:-inference}" &
    CHILDREN+=($!)
  done
fi

sleep 2
log "LoopChat is running at http://$HOST:$PORT/  (admin: http://$HOST:$PORT/admin/)"
log "$login"
log "Ctrl-C stops every process started here."
wait -n "${CHILDREN[@]}" || true
log "a process exited; stopping the others"
