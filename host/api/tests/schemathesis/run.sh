#!/usr/bin/env bash
# Runs schemathesis against the real service: `stratagem serve` on an empty
# temporary data directory (SQLite) and a free port, with a tenant and a
# key the run cannot revoke (its revocation operation is left out of the
# run). Every check, a fixed seed, a bounded number of examples; exits
# non-zero on any failure and closes on one "N passed, N failed" line
# counting the API's operations.
#
#   host/api/tests/schemathesis/run.sh STRATAGEM_BINARY SCHEMATHESIS_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stratagem=$(realpath "${1:?the stratagem binary}")
schemathesis=$(realpath "${2:?the schemathesis binary}")

work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export STRATAGEM_DATA_DIR=$work/data
export STRATAGEM_WEB_DIR=$work/no-ui
# Strategy uploads are accepted and their builds fail at once: the API is
# under test here, not componentize-py. The stand-in answers the start-up
# check (a node without any toolchain refuses uploads with a 503, which
# host/cli/tests/deploy.rs covers) and fails every build.
mkdir -p "$work/bin"
printf '#!/bin/sh\nif [ "$1" = --version ]; then echo "componentize-py 0 (stand-in)"; exit 0; fi\necho "this stand-in builds nothing" >&2\nexit 1\n' >"$work/bin/componentize-py"
chmod +x "$work/bin/componentize-py"
export STRATAGEM_COMPONENTIZE_PY=$work/bin/componentize-py
unset DATABASE_URL STRATAGEM_SECRETS_KEY
key=$("$stratagem" tenant create "Schemathesis" 2>/dev/null | sed -n 's/^api key: //p')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
RUST_LOG=warn "$stratagem" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$base/healthz" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "openapi: the service did not start"; exit 1; }
  sleep 0.2
done

# schemathesis keeps a cache of past failures in its working directory
# and replays them first; a run starts from nothing.
cd "$work"
set +e
"$schemathesis" --config-file "$here/schemathesis.toml" run "$base/api/openapi.json" \
  --header "Authorization: Bearer $key" \
  --report junit --report-junit-path "$work/junit.xml" \
  --no-color
status=$?
set -e

# One line per run for .ci/run: operations that passed and failed.
read -r passed failed < <(python3 - "$work/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
passed = failed = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is None:
        passed += 1
print(passed, failed)
PY
)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if grep -q "panicked" "$work/server.log"; then
  echo "the service panicked:"; grep -A5 "panicked" "$work/server.log"
  failed=$((failed + 1)); status=1
fi
echo "$passed passed, $failed failed in schemathesis (one per operation)"
exit "$status"
