#!/usr/bin/env bash
# Interop tests: real third-party code from the npm registry (the CloudEvents JavaScript SDK and a
# Standard Webhooks verifier, versions pinned in package.json / package-lock.json) against the real
# hendelse binary. Installs the packages into test/interop/node_modules, then runs node's built-in
# test runner with TAP output and prints "interop: N passed, N failed".
#
#   HENDELSE_BIN=build/server/hendelse bash test/interop/run.sh [test files...]
#
# Exit status: node's (0 when every test passed), 77 (skipped) when node or npm is missing or too old.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="${HENDELSE_BIN:-$repo/build/server/hendelse}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
export HENDELSE_BIN="$bin"
if [ ! -x "$HENDELSE_BIN" ]; then
    echo "run.sh: no hendelse binary at $HENDELSE_BIN (set HENDELSE_BIN)" >&2
    exit 1
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "run.sh: node and npm are needed; skipping the interop tests" >&2
    exit 77
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
    echo "run.sh: node $(node --version) is too old (18 or later has fetch and node:test); skipping" >&2
    exit 77
fi

cd "$here" || exit 1
# npm ci installs exactly the locked versions; fall back to npm install if the lock cannot be used.
if ! npm ci --no-audit --no-fund --prefer-offline >&2; then
    echo "run.sh: npm ci failed; trying npm install" >&2
    npm install --no-audit --no-fund >&2 || { echo "run.sh: npm install failed" >&2; exit 1; }
fi

if [ "$#" -gt 0 ]; then
    files=("$@")
else
    files=(*.test.mjs)
fi

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
node --test --test-reporter=tap "${files[@]}" | tee "$out"
rc="${PIPESTATUS[0]}"

pass="$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)"
fail="$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)"
echo "interop: ${pass:-0} passed, ${fail:-0} failed"
if [ "$rc" -eq 0 ] && [ -z "$pass" ]; then
    echo "run.sh: node reported no test" >&2
    exit 1
fi
exit "$rc"
