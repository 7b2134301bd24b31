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

# pinned_venv DIR REQUIREMENTS PROGRAM WHAT: creates the venv DIR with the pins of
# infra/REQUIREMENTS unless it already has exactly them (PROGRAM in its bin/ shows it was built).
# Each tool has a venv of its own, so their pins never meet.
pinned_venv() {
  local venv="$ROOT/$1" requirements="$ROOT/infra/$2" program="$3" what="$4"
  if [ -x "$venv/bin/$program" ] && cmp -s "$requirements" "$venv/.requirements"; then
    return
  fi
  command -v python3 >/dev/null || die "python3 is required (with pip and venv)"
  log "installing $what into $1 (once)"
  python3 -m venv "$venv" || die "could not create $venv (on Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" \
    || die "pip install of $what failed"
  cp "$requirements" "$venv/.requirements"
}

# .venv: the emulator and the lint tools.
ensure_venv() { pinned_venv .venv requirements.txt python "the emulator and lint tools"; }
# .venv-sam: the SAM CLI, for `sam validate --lint`.
ensure_sam_venv() { pinned_venv .venv-sam requirements-sam.txt sam "the SAM CLI"; }
# .venv-lambda: cargo-lambda and the zig it links with, for infra/package.
ensure_lambda_venv() { pinned_venv .venv-lambda requirements-lambda.txt cargo-lambda "cargo-lambda and zig"; }

# ensure_chromium: the headless browser and its WebDriver for the dashboard's browser tests
# (Debian's chromium and chromium-driver), installed with apt-get when missing.
ensure_chromium() {
  if command -v chromedriver >/dev/null && command -v chromium >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null \
    || die "the browser tests need chromium and chromedriver; install them (Debian: apt-get install chromium chromium-driver)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing chromium and chromium-driver (once)"
  $sudo apt-get install -y -q chromium chromium-driver >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium chromium-driver >/dev/null; } \
    || die "apt-get could not install chromium and chromium-driver"
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
