#!/usr/bin/env bash
# Install what the tests need and run the whole suite. Extra arguments go to pytest.
source "$(dirname "$0")/lib.sh"

install_python requirements-dev.txt
# The vLLM tests run against a real vLLM CPU server in its own environment.
[ "${LOOPCHAT_SKIP_VLLM:-0}" = 1 ] || install_vllm
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  log "installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Tests use their own Redis database and channel prefix, away from a running app.
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
export CHANNEL_PREFIX=loopchat-test CACHE_PREFIX=loopchat-test
ensure_redis
"$PY" manage.py prepare_model
set +e
"$VENV/bin/pytest" "$@"
status=$?
set -e
exit $status
