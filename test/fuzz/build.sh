#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz/ with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer. Not part of the meson build: the normal gcc build is unaffected.
#
#   test/fuzz/build.sh [target ...]     (default: every fuzz_*.c here)
#
#   OUT=dir        where objects and binaries go (default build-fuzz, ignored by git)
#   CC=clang       the compiler (must support -fsanitize=fuzzer: Debian's clang-14 does)
#   COVERAGE=1     instead, build with clang's source-based coverage and no sanitizers, into
#                  OUT-cov, for measuring what a corpus covers (see README.md)
#
# The project's sources (filter/, store/, webhook/, server/ minus main.c) are compiled once with
# -fsanitize=fuzzer-no-link so that libFuzzer sees their coverage; each target links them with its
# own fuzz_<name>.c. The system libraries (yajl, libevent, libevhtp, LMDB, OpenSSL) are not
# instrumented.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
CC=${CC:-clang}
OUT=${OUT:-build-fuzz}
cov=${COVERAGE:-0}
[ "$cov" = 1 ] && OUT=${OUT}-cov
mkdir -p "$OUT/obj"

common=(-std=c11 -D_GNU_SOURCE -DHENDELSE_VERSION="\"fuzz\"" -I"$root" -g -O1
        -fno-omit-frame-pointer -Wall -Wno-unused-parameter)
if [ "$cov" = 1 ]; then
  sflags=(-fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping)
  lflags=(-fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping)
else
  sflags=(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
  lflags=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
fi
pc() { pkg-config "$@"; }
incs=($(pc --cflags libevent libevent_openssl evhtp yajl openssl 2>/dev/null || true))
libs=(-lyajl -llmdb -levhtp $(pc --libs libevent libevent_openssl openssl) -lonig -lpthread -lm)

# The sources of the libraries hendelse links, as the meson files list them today (globbed so that
# a new file is picked up; main.c is the program, not the library).
srcs=()
for f in filter/*.c store/*.c webhook/*.c server/*.c; do
  [ "$f" = server/main.c ] && continue
  srcs+=("$f")
done
# docs/openapi.json embedded as meson does it
python3 tools/embed.py docs/openapi.json "$OUT/obj/openapi_doc.c" srv_openapi_doc
srcs+=("$OUT/obj/openapi_doc.c")

objs=()
pids=()
for f in "${srcs[@]}"; do
  o="$OUT/obj/$(echo "$f" | tr '/' '_' | sed 's/\.c$/.o/')"
  objs+=("$o")
  if [ ! -e "$o" ] || [ "$f" -nt "$o" ] || [ "$0" -nt "$o" ] ||
     [ -n "$(find filter store webhook server -name '*.h' -newer "$o" -print -quit)" ]; then
    "$CC" "${common[@]}" "${sflags[@]}" "${incs[@]}" -c "$f" -o "$o" &
    pids+=($!)
    if [ "${#pids[@]}" -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
ar rcs "$OUT/libhendelse_fuzz.a" "${objs[@]}"

targets=("$@")
if [ "${#targets[@]}" = 0 ]; then
  for f in "$here"/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
for t in "${targets[@]}"; do
  "$CC" "${common[@]}" "${lflags[@]}" "${incs[@]}" "$here/fuzz_$t.c" \
    "$OUT/libhendelse_fuzz.a" "${libs[@]}" -o "$OUT/fuzz_$t"
  echo "built $OUT/fuzz_$t"
done
