#!/usr/bin/env bash
# Measures what a fuzz target's corpus covers of the code it is aimed at: builds the targets with
# clang's source-based coverage (build.sh with COVERAGE=1, into OUT-cov), replays the corpus
# directories given (no fuzzing: -runs=0), and prints llvm-cov's line, function and branch
# coverage of the target's own files.
#
#   test/fuzz/coverage.sh TARGET DIR...       e.g. coverage.sh json build-fuzz/work/json test/fuzz/corpus/json
#
# Needs llvm-profdata-14 and llvm-cov-14 (Debian package llvm-14).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
t=$1; shift
OUT=${OUT:-build-fuzz}
COVERAGE=1 OUT=$OUT bash "$here/build.sh" "$t" >/dev/null
bin="$OUT-cov/fuzz_$t"
prof=$(mktemp -d)
LLVM_PROFILE_FILE="$prof/%p.profraw" "$bin" -runs=0 "$@" >/dev/null 2>&1
llvm-profdata-14 merge -sparse "$prof"/*.profraw -o "$prof/all.profdata"
case "$t" in
  json) files=(filter/json.c filter/json_write.c) ;;
  event) files=(filter/event.c filter/text.c) ;;
  cesql) files=(filter/cesql_lex.c filter/cesql_parse.c filter/cesql_eval.c filter/cesql_func.c) ;;
  dialect) files=(filter/dialect.c) ;;
  jwt) files=(server/jwt.c) ;;
  policy) files=(server/authz.c server/register.c server/fileutil.c) ;;
  binary) files=(server/binary.c) ;;
  http) files=(server/http.c server/publish.c server/binary.c server/commit.c server/query.c) ;;
  *) files=() ;;
esac
llvm-cov-14 report "$bin" -instr-profile="$prof/all.profdata" "${files[@]}"
rm -rf "$prof"
