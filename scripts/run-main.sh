#!/usr/bin/env bash
# The project's main job (`make run`): the benchmark comparison on this machine.
#
#   scripts/run-main.sh BUILD_DIR
#
# `make run` has already built BUILD_DIR. bdwgc support in uffdgc-bench is decided when
# CMake configures, so if libgc-dev is missing and can be installed (root + apt), this
# installs it and re-configures + rebuilds before running. Without it the bdw rows say
# "skipped" and everything else still runs.
#
# Environment: BENCH_ARGS adds or overrides uffdgc-bench options (e.g. "--scale 1").
set -euo pipefail

build=${1:?usage: scripts/run-main.sh BUILD_DIR}
bench="$build/tools/uffdgc-bench"
out_dir="$build/bench-results"

have_libgc() {
  [ -e /usr/include/gc.h ] || [ -e /usr/include/gc/gc.h ]
}

if ! have_libgc; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "run-main: installing libgc-dev for the bdwgc comparison (apt-get)"
    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgc-dev; } \
        > "$build/apt-libgc.log" 2>&1; then
      echo "run-main: re-configuring so uffdgc-bench is built with bdwgc"
      cmake "$build" > /dev/null
      cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target uffdgc-bench
    else
      echo "run-main: could not install libgc-dev (see $build/apt-libgc.log); continuing without bdw"
    fi
  else
    echo "run-main: libgc-dev is not installed and cannot be installed here (needs root and" \
         "apt-get); the bdw rows will be skipped"
  fi
elif ! grep -q "UGC_BDW_LIBRARY:FILEPATH=/" "$build/CMakeCache.txt" 2> /dev/null; then
  # Installed after the last configure: configure again so the bdw variant is built.
  cmake "$build" > /dev/null
  cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target uffdgc-bench
fi

if [ ! -x "$bench" ]; then
  echo "run-main: $bench is missing: build first (make)" >&2
  exit 1
fi

mkdir -p "$out_dir"
echo "run-main: kernel $(uname -r), $(nproc) CPUs; results in $out_dir"
# The default --scale (3) keeps the whole run (compact's 1 GiB heap included) near 30 s on
# 2 CPUs with every backend; BENCH_ARGS="--repeat 3" (the documented table) about 90 s.
# shellcheck disable=SC2086
status=0
"$bench" --workload all --backend all --compare bdw \
  --json "$out_dir/results.json" --plot "$out_dir/plots" ${BENCH_ARGS:-} || status=$?
echo "run-main: finished in ${SECONDS} s (exit status $status)"
exit "$status"
