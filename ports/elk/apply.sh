#!/usr/bin/env bash
# Applies the uffdgc adapter to an unpacked Elk 3.99.8 source tree (SRC): heap-ugc.c in
# place of Elk's collectors, terminate-ugc.c in place of terminate.c, and two small edits
# (continuations ask Elk_Control_Delta where their saved stack is now; `delta` is kept in an
# intptr_t, not an int). Every edit is checked: a tree that does not look as expected fails.
set -euo pipefail
SRC=${1:?usage: apply.sh ELK_SOURCE_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
  echo "apply.sh: $*" >&2
  exit 1
}

# replace FILE FROM TO COUNT: literal replacement, which must match exactly COUNT times.
replace() {
  local file=$1 from=$2 to=$3 count=$4 found
  found=$(grep -cF -- "$from" "$file" || true)
  [ "$found" = "$count" ] || fail "$file: expected $count line(s) with '$from', found $found"
  FROM=$from TO=$to perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$file"
}

cd "$SRC"
[ -f src/heap-sc.c ] && [ -f src/heap.c ] && [ -f src/terminate.c ] ||
  fail "$SRC does not look like Elk's source tree"
if grep -q 'heap-ugc.c' src/heap.c; then
  echo "apply.sh: already applied"
  exit 0
fi
cp "$HERE/heap-ugc.c" src/heap-ugc.c
cp "$HERE/terminate-ugc.c" src/terminate.c
replace src/heap.c '#  include "heap-gen.c"' '#  include "heap-ugc.c"' 1
replace src/heap.c '#  include "heap-sc.c"' '#  include "heap-ugc.c"' 1
replace src/cont.c 'delta = CONTROL(control)->delta;' 'delta = Elk_Control_Delta (control);' 2
replace src/cont.c 'register int delta = 0;' 'register intptr_t delta = 0;' 1
replace src/debug.c 'delta = CONTROL(cp)->delta;' 'delta = Elk_Control_Delta (cp);' 1
replace src/debug.c 'register int delta = 0;' 'register intptr_t delta = 0;' 1
printf '\n/* uffdgc port: the delta of a continuation where it is now (heap-ugc.c). */\n%s\n' \
  'extern intptr_t Elk_Control_Delta (Object);' >>include/gc.h
# Elk's configure always defines GENERATIONAL_GC; the adapter is neither collector.
replace configure '$as_echo "#define GENERATIONAL_GC 1" >>confdefs.h' ':' 1
echo "apply.sh: adapter applied to $SRC"
