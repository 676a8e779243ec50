#!/usr/bin/env bash
# Runs the fuzz targets built by build.sh, one at a time (nice'd), each from its seed corpus, and
# ends with one line "N passed, N failed" (each target is one test: it passes when libFuzzer ran
# its time without a finding).
#
#   test/fuzz/run.sh [--build] [-t SECONDS] [target ...]   (default: 20 s, every fuzz_*.c target)
#
#   --build     run build.sh first (a failed build counts as one failed test)
#   OUT=dir     where build.sh put the binaries (default build-fuzz); logs go to OUT/logs, new
#               inputs to OUT/work/<target>, crashes to OUT/artifacts/<target>-*
#   BIN=dir     take the binaries from dir instead of OUT (to fuzz a copy while rebuilding)
#   FUZZ_ARGS   more libFuzzer flags
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
OUT=${OUT:-build-fuzz}
BIN=${BIN:-$OUT}
secs=20
build=0
if [ "${1:-}" = --build ]; then build=1; shift; fi
if [ "${1:-}" = -t ]; then secs=$2; shift 2; fi
targets=("$@")
if [ "${#targets[@]}" = 0 ]; then
  for f in "$here"/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
if [ "$build" = 1 ] && ! OUT=$OUT bash "$here/build.sh" "$@" >"${TMPDIR:-/tmp}/fuzz-build.$$.log" 2>&1; then
  tail -30 "${TMPDIR:-/tmp}/fuzz-build.$$.log"; rm -f "${TMPDIR:-/tmp}/fuzz-build.$$.log"
  echo "FAIL build"; echo "0 passed, 1 failed"; exit 1
fi
rm -f "${TMPDIR:-/tmp}/fuzz-build.$$.log"
mkdir -p "$OUT/logs" "$OUT/artifacts"
pass=0; fail=0
for t in "${targets[@]}"; do
  bin="$BIN/fuzz_$t"
  log="$OUT/logs/$t.log"
  work="$OUT/work/$t"
  mkdir -p "$work"
  if [ ! -x "$bin" ]; then
    echo "FAIL $t: $bin not built"; fail=$((fail + 1)); continue
  fi
  dict=()
  [ -f "$here/$t.dict" ] && dict=("-dict=$here/$t.dict")
  # shellcheck disable=SC2086
  nice -n 10 "$bin" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$t-" "${dict[@]}" ${FUZZ_ARGS:-} \
    "$work" "$here/corpus/$t" >"$log" 2>&1
  st=$?
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | grep -oE 'cov: [0-9]+ ft: [0-9]+' | tail -1)
  if [ "$st" = 0 ]; then
    echo "PASS $t: ${execs:-?} executions in ${secs}s, $cov"
    pass=$((pass + 1))
  else
    echo "FAIL $t (exit $st): see $log"
    grep -E 'ERROR|runtime error|oracle failed|invariant failed|SUMMARY' "$log" | head -5
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
