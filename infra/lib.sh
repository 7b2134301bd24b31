# Shared by infra/local/run and infra/test: the project venv and the AWS emulator.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

# Dummy credentials and a region: the emulator accepts any, the SDK insists on both.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-emulator}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-emulator}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export AWS_EC2_METADATA_DISABLED=true

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Creates .venv with the pinned tools unless it already has exactly them.
ensure_venv() {
  local stamp="$VENV/.requirements"
  if [ -x "$VENV/bin/python" ] && cmp -s "$ROOT/infra/requirements.txt" "$stamp"; then
    return
  fi
  command -v python3 >/dev/null || die "python3 is required (with pip and venv)"
  log "installing the emulator and lint tools into .venv (once)"
  python3 -m venv "$VENV" || die "could not create $VENV (on Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/infra/requirements.txt" \
    || die "pip install failed"
  cp "$ROOT/infra/requirements.txt" "$stamp"
}

# Creates .venv-sam with the pinned SAM CLI unless it already has exactly it.
ensure_sam_venv() {
  local venv="$ROOT/.venv-sam" stamp="$ROOT/.venv-sam/.requirements"
  if [ -x "$venv/bin/sam" ] && cmp -s "$ROOT/infra/requirements-sam.txt" "$stamp"; then
    return
  fi
  log "installing the SAM CLI into .venv-sam (once)"
  python3 -m venv "$venv" || die "could not create $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/infra/requirements-sam.txt" \
    || die "pip install of the SAM CLI failed"
  cp "$ROOT/infra/requirements-sam.txt" "$stamp"
}

# Creates .venv-lambda with the pinned cargo-lambda and zig unless it already has exactly them.
ensure_lambda_venv() {
  local venv="$ROOT/.venv-lambda" stamp="$ROOT/.venv-lambda/.requirements"
  if [ -x "$venv/bin/cargo-lambda" ] && cmp -s "$ROOT/infra/requirements-lambda.txt" "$stamp"; then
    return
  fi
  log "installing cargo-lambda and zig into .venv-lambda (once)"
  python3 -m venv "$venv" || die "could not create $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/infra/requirements-lambda.txt" \
    || die "pip install of cargo-lambda failed"
  cp "$ROOT/infra/requirements-lambda.txt" "$stamp"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_emulator PORT: starts moto on 127.0.0.1:PORT in the background, sets EMULATOR_PID,
# and waits until it answers.
start_emulator() {
  local port="$1"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is already in use; stop whatever listens there (an emulator from an earlier run?)"
  fi
  "$VENV/bin/python" "$ROOT/infra/local/emulator.py" --host 127.0.0.1 --port "$port" \
    >"${EMULATOR_LOG:-/dev/null}" 2>&1 &
  EMULATOR_PID=$!
  local tries=0
  until "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://127.0.0.1:$port/moto-api/" 2>/dev/null; do
    tries=$((tries + 1))
    kill -0 "$EMULATOR_PID" 2>/dev/null || die "the emulator exited; see ${EMULATOR_LOG:-its output}"
    [ "$tries" -lt 300 ] || die "the emulator did not answer on port $port within 30 s"
    sleep 0.1
  done
}

stop_pid() {
  local pid="${1:-}"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
