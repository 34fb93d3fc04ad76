#!/usr/bin/env bash
# `make port-elk`: fetches Elk 3.99.8 (fetch.sh), applies the uffdgc adapter (apply.sh),
# builds it against this tree's libuffdgc (serial make: Elk's parallel build races) and
# runs Elk's own `make check`, unchanged, once per configuration:
#   every backend this kernel runs (uffdgc-probe), concurrent ones with sigbus and with
#   thread delivery; once with UFFDGC_VERIFY=1; once with a small heap (hundreds of
#   collections).
# Each run prints its tests passed and the collections its Elk processes made (summed from
# the report each process appends at exit). When the source cannot be fetched it prints
# "skipped: <why>" and exits 0. Any failed test, verify failure or missing collections
# fails the script.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd) || { echo "usage: port-elk.sh UFFDGC_BUILD_DIR" >&2; exit 2; }
WORK=${ELK_WORK:-$BUILD/elk}
SMALL_HEAP_KB=${ELK_SMALL_HEAP_KB:-16}
MIN_SMALL_HEAP_COLLECTIONS=100
START=$(date +%s)

say() { printf 'port-elk (t+%ss): %s\n' "$(($(date +%s) - START))" "$*"; }

[ -f "$BUILD/libuffdgc.so" ] || { echo "no libuffdgc.so in $BUILD: build uffdgc first" >&2; exit 2; }
mkdir -p "$WORK"
out=$(bash "$HERE/fetch.sh" "$WORK/fetch")
rc=$?
echo "$out"
if [ $rc = 3 ]; then
  exit 0 # fetch.sh printed "skipped: <why>"
fi
[ $rc = 0 ] || { echo "fetch.sh failed ($rc)" >&2; exit 1; }

SRC=$WORK/src
rm -rf "$SRC"
cp -a "$WORK/fetch/source/." "$SRC"
if ! bash "$HERE/apply.sh" "$SRC"; then
  # Debian's patches may have changed a line the adapter edits: the upstream tarball
  # (checked against apt's index by fetch.sh) is the tree the adapter was written for.
  orig=$(find "$WORK/fetch" -maxdepth 1 -name 'elk_*.orig.tar.gz' | head -1)
  [ -n "$orig" ] || exit 1
  say "the adapter does not apply to the Debian-patched tree: using $(basename "$orig")"
  rm -rf "$SRC" "$WORK/orig"
  mkdir -p "$WORK/orig"
  tar xzf "$orig" -C "$WORK/orig" || exit 1
  mv "$WORK/orig"/elk-* "$SRC"
  bash "$HERE/apply.sh" "$SRC" || exit 1
fi
say "configure and build Elk (serial make)"
(cd "$SRC" &&
  ./configure --without-x CFLAGS="-O2 -g -fcommon -std=gnu89" CPPFLAGS="-I$ROOT/include" \
    LDFLAGS="-L$BUILD -Wl,-rpath,$BUILD" LIBS="-luffdgc -lpthread" >"$WORK/configure.log" 2>&1 &&
  make >"$WORK/build.log" 2>&1) ||
  { tail -30 "$WORK/build.log" "$WORK/configure.log" 2>/dev/null; echo "Elk did not build" >&2; exit 1; }

PROBE=$BUILD/tools/uffdgc-probe
[ -x "$PROBE" ] || PROBE=$BUILD/uffdgc-probe
BACKENDS=$("$PROBE" --no-measure | awk '/^backends/ { b = 1; next } b && NF == 0 { exit }
  b && $2 == "implemented;" && /the kernel offers what it needs/ { print $1 }')
[ -n "$BACKENDS" ] || BACKENDS=stw
"$PROBE" --no-measure | awk '/^backends/ { b = 1; next } b && NF == 0 { exit }
  b && $2 == "implemented;" && !/the kernel offers what it needs/ { print "skipped backend: " $0 }'

RUNS=()
for backend in $BACKENDS; do
  if [ "$backend" = stw ] || [ "$backend" = sigsegv ]; then
    RUNS+=("$backend|UFFDGC_BACKEND=$backend") # one delivery mode: none, or its own signal
  else
    RUNS+=("$backend sigbus|UFFDGC_BACKEND=$backend UFFDGC_DELIVERY=sigbus")
    RUNS+=("$backend thread|UFFDGC_BACKEND=$backend UFFDGC_DELIVERY=thread")
  fi
done
RUNS+=("verify (auto)|UFFDGC_VERIFY=1")
RUNS+=("small heap ${SMALL_HEAP_KB} KiB (auto)|ELK_UGC_HEAP_INITIAL_KB=$SMALL_HEAP_KB")

failed=0
for run in "${RUNS[@]}"; do
  name=${run%%|*}
  settings=${run#*|}
  report=$WORK/report.txt
  log=$WORK/check-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log
  rm -f "$report"
  run_start=$(date +%s)
  # shellcheck disable=SC2086
  (cd "$SRC" && env $settings ELK_UGC_REPORT="$report" make check >"$log" 2>&1)
  rc=$?
  passed=$(grep -c '^PASS: ' "$log")
  total=$(grep -cE '^(PASS|FAIL|XFAIL|XPASS|ERROR): ' "$log")
  read -r processes cycles verify_failures verified backends < <(awk '
    { n++; c += $2; v += $3; w += $4; if (!seen[$1]++) b = b (b ? "," : "") $1 }
    END { printf "%d %d %d %d %s\n", n, c, v, w, (b ? b : "-") }' "$report" 2>/dev/null ||
    echo "0 0 0 0 -")
  line="[$name] $passed of $total Elk tests passed; $cycles collections in $processes Elk processes (backend $backends), $verified verified, $verify_failures verify failures, $(($(date +%s) - run_start)) s"
  ok=1
  [ $rc = 0 ] && [ "$total" -gt 0 ] && [ "$passed" = "$total" ] || ok=0
  [ "$verify_failures" = 0 ] || ok=0
  [ "$cycles" -gt 0 ] || ok=0
  case $name in
  small*) [ "$cycles" -ge $MIN_SMALL_HEAP_COLLECTIONS ] || ok=0 ;;
  verify*) [ "$verified" -gt 0 ] || ok=0 ;;
  esac
  if [ $ok = 1 ]; then
    say "ok     $line"
  else
    say "FAILED $line"
    grep -E '^(FAIL|ERROR)|Panic|Fatal|uffdgc:' "$log" | head -20
    failed=$((failed + 1))
  fi
done
# Not part of Elk's suite: terminators run through finalization. 5000 file ports opened
# under a limit of 256 descriptors, a collection every 100: only closing the unreachable
# ones (Terminate_File) lets it finish.
cat >"$WORK/terminators.scm" <<'SCM'
(define (loop n)
  (if (> n 0)
      (begin (open-input-file "/etc/hostname")
             (if (= 0 (modulo n 100)) (collect))
             (loop (- n 1)))))
(loop 5000)
(display "terminators: 5000 ports opened, 256 descriptors\n")
SCM
for backend in $BACKENDS; do
  if (ulimit -n 256 && cd "$SRC/test" && UFFDGC_BACKEND=$backend UFFDGC_VERIFY=1 \
    ../src/elk -p .:../scm -l "$WORK/terminators.scm" 2>&1) | grep -q '^terminators: 5000'; then
    say "ok     [terminators, $backend] 5000 unreachable file ports closed by their terminators"
  else
    say "FAILED [terminators, $backend] file ports were not closed"
    failed=$((failed + 1))
  fi
  RUNS+=("terminators $backend")
done
say "$((${#RUNS[@]} - failed)) of ${#RUNS[@]} configurations ok"
[ $failed = 0 ]
