#!/usr/bin/env python3
"""bench/smoke: runs uffdgc-bench and checks its --json output.

usage: bench_smoke.py UFFDGC_BENCH JSON_OUT [-- UFFDGC_BENCH_ARGS...]

Without extra arguments (the CTest run) it runs every workload on every backend with
--verify at --scale 1 (compact on a 128 MiB heap, with both fault-delivery modes), which
takes about 30 s here. With `-- ARGS` it runs `UFFDGC_BENCH ARGS --json JSON_OUT` once
instead, e.g. the full check:

    bench_smoke.py build/tools/uffdgc-bench /tmp/out.json -- \\
        --workload all --backend all --verify

Checks: exit status 0; the JSON is an array with one object per run, every run that was
not skipped holds every key docs/benchmarks.md documents (nested ones included) with
values of the right type, no verification failure or digest mismatch; skipped rows say
why; bad options exit with status 2 and name the option; latency rows saw at least one
collection cycle overlap their timed units, split them into units during a cycle and idle
ones that add up, and report the MMU at 1, 10 and 100 ms."""
import json
import os
import numbers
import subprocess
import sys

TOP = ["workload", "backend", "backend_requested", "kernel", "threads", "heap_max_bytes",
       "wall_s", "mutator_cpu_s", "gc_cpu_s", "user_cpu_s", "sys_cpu_s", "sys_cpu_share",
       "minor_faults", "major_faults", "rss_peak_over_live", "rss_cycle_peak_bytes",
       "cycle_footprint_bytes", "gc_cycles", "pause_us", "pause_kind_us",
       "stall_us", "unit_us", "compaction", "live_bytes_peak", "rss_peak_bytes",
       "rss_after_gc_bytes", "shmem_peak_bytes", "vma_peak", "verify"]
STRINGS = ["workload", "backend", "backend_requested", "kernel"]
DIST = {"pause_us": ["count", "p50", "p95", "p99", "max"],
        "stall_us": ["count", "p50", "p99", "max"],
        "unit_us": ["count", "p50", "p99", "max"]}
KIND = ["count", "p50", "p99", "max"]
COMPACTION = ["pages_total", "pages_in_place", "pages_slid_whole", "pages_recycled",
              "pages_fresh", "pages_moved_huge", "pages_retained_reused", "pages_recycled_huge", "pages_untouched", "pages_by_mutator", "pages_by_gc", "copy_ioctls", "move_ioctls",
              "moves_misreported", "continue_ioctls", "zeropage_ioctls", "madvise_calls", "bytes_copied",
              "concurrent_s", "breakdown_s",
              # derived (uffdgc-bench), documented in docs/benchmarks.md
              "pages_built", "compaction_s", "gb_per_s", "ns_per_page_build",
              "ns_per_page_map", "work_s", "kernel_share"]
BREAKDOWN = ["forwarding", "memcpy", "map", "madvise", "wait"]
# latency rows: the timed units split by whether a collection cycle overlapped them.
UNIT_SPLIT = ["unit_during_cycle_us", "unit_idle_us", "unit_marking_us", "unit_compacting_us"]
MMU_AT = ["1ms", "10ms", "100ms"]
VERIFY = ["cycles_checked", "failures", "digest_checks", "digest_mismatches"]
SKIPPED_ROW = {"workload", "backend", "backend_requested", "skipped", "delivery"}

ALL_BUT_COMPACT = "gcbench,binarytrees,frag,latency,mt,cold"
DEFAULT_RUNS = [
    ["--workload", ALL_BUT_COMPACT, "--backend", "all", "--scale", "1", "--verify"],
    ["--workload", "compact", "--backend", "all", "--delivery", "both", "--heap", "128M",
     "--scale", "1", "--verify"],
]


def fail(message):
    print("bench/smoke: FAIL: " + message)
    sys.exit(1)


def need(obj, keys, where):
    if not isinstance(obj, dict):
        fail("%s: expected an object, got %r" % (where, obj))
    for key in keys:
        if key not in obj:
            fail("%s: missing key %r" % (where, key))


def need_numbers(obj, keys, where):
    need(obj, keys, where)
    for key in keys:
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Number) or value < 0:
            fail("%s.%s: expected a non-negative number, got %r" % (where, key, value))


def check_row(row):
    where = "%s/%s" % (row.get("workload"), row.get("backend"))
    if "skipped" in row:
        extra = set(row) - SKIPPED_ROW
        if extra or not row["skipped"]:
            fail("%s: a skipped row holds %r and reason %r" % (where, sorted(extra),
                                                                row["skipped"]))
        return False
    need(row, TOP, where)
    for key in STRINGS:
        if not isinstance(row[key], str) or not row[key]:
            fail("%s.%s: expected a non-empty string" % (where, key))
    if row.get("ok") is not True:
        fail("%s: run failed: %s" % (where, row.get("error")))
    if row["backend"] != "bdw":
        check_settings(row, where)
    need_numbers(row, ["threads", "heap_max_bytes", "wall_s", "mutator_cpu_s", "gc_cpu_s",
                       "user_cpu_s", "sys_cpu_s", "sys_cpu_share", "minor_faults",
                       "major_faults", "rss_peak_over_live", "gc_cycles", "live_bytes_peak", "rss_peak_bytes",
                       "rss_after_gc_bytes", "shmem_peak_bytes", "vma_peak"], where)
    for key, fields in DIST.items():
        need_numbers(row[key], fields, where + "." + key)
    need(row["pause_kind_us"], ["mark", "compact"], where + ".pause_kind_us")
    for kind in ("mark", "compact"):
        need_numbers(row["pause_kind_us"][kind], KIND, where + ".pause_kind_us." + kind)
    need_numbers(row["compaction"], [k for k in COMPACTION if k != "breakdown_s"],
                 where + ".compaction")
    need_numbers(row["compaction"]["breakdown_s"], BREAKDOWN, where + ".breakdown_s")
    need_numbers(row["verify"], VERIFY, where + ".verify")
    if row["wall_s"] <= 0 or row["gc_cycles"] < 1:
        fail("%s: implausible wall_s %r / gc_cycles %r" % (where, row["wall_s"],
                                                             row["gc_cycles"]))
    check_usage(row, where)
    if row["verify"]["failures"] or row["verify"]["digest_mismatches"]:
        fail("%s: verification failed: %r" % (where, row["verify"]))
    c = row["compaction"]
    if row["backend"] != "bdw":
        # One stop per cycle, three when the cycle marked concurrently (initial, remark,
        # compaction), and one for each remark given up for the barrier's buffers.
        stops = (row["gc_cycles"] + 2 * row.get("mark_concurrent_cycles", 0) +
                 row.get("mark_remark_retries", 0))
        if row["pause_us"]["count"] != stops:
            fail("%s: %d pauses for %d cycles (%d marked concurrently, %d remarks given up): "
                 "a pause is one whole stop" % (where, row["pause_us"]["count"],
                                                row["gc_cycles"],
                                                row.get("mark_concurrent_cycles", 0),
                                                row.get("mark_remark_retries", 0)))
        if c["pages_built"] != c["pages_by_gc"] + c["pages_by_mutator"]:
            fail("%s: pages_built %d != by_gc + by_mutator" % (where, c["pages_built"]))
    if row["workload"] == "latency":
        check_latency(row, where)
    return True


def check_settings(row, where):
    """The library's resolved settings (ugc_heap_config): counts, and huge pages as the
    backend chose them: off for copy and move unless UFFDGC_THP says otherwise."""
    need(row, ["settings"], where)
    settings = row["settings"]
    need_numbers(settings, ["gc_threads", "compact_threads", "concurrent_mark"],
                 where + ".settings")
    if settings["gc_threads"] < 1 or settings["compact_threads"] < 1:
        fail("%s.settings: thread counts not resolved: %r" % (where, settings))
    if settings.get("huge_pages") not in ("on", "off"):
        fail("%s.settings.huge_pages: expected \"on\" or \"off\", got %r" %
             (where, settings.get("huge_pages")))
    thp_set = os.environ.get("UFFDGC_THP", "auto") != "auto"
    if row["backend"] in ("copy", "move") and not thp_set and settings["huge_pages"] != "off":
        fail("%s.settings.huge_pages: %r, but copy and move run without huge pages" %
             (where, settings["huge_pages"]))


def check_usage(row, where):
    """The CPU split and the faults are of the same process as the CPU totals: user + sys
    is the process's CPU (mutator + GC), the share is sys over it, every run touches
    memory (at least one minor fault), and the peak RSS ratio is RSS over live."""
    cpu = row["user_cpu_s"] + row["sys_cpu_s"]
    if abs(cpu - (row["mutator_cpu_s"] + row["gc_cpu_s"])) > 0.01 + 0.02 * cpu and \
            row["mutator_cpu_s"] > 0:
        fail("%s: user %r + sys %r is not the process CPU (mutator %r + gc %r)" % (
            where, row["user_cpu_s"], row["sys_cpu_s"], row["mutator_cpu_s"], row["gc_cpu_s"]))
    share = row["sys_cpu_share"]
    if not 0 <= share <= 1 or (cpu > 0 and abs(share - row["sys_cpu_s"] / cpu) > 1e-3):
        fail("%s: sys_cpu_share %r for user %r, sys %r" % (where, share, row["user_cpu_s"],
                                                            row["sys_cpu_s"]))
    if row["minor_faults"] < 1:
        fail("%s: no minor page fault counted" % where)
    # compact: every cycle's RSS peak was read; it cannot exceed the run's peak.
    if row["workload"] == "compact" and row["backend"] != "bdw":
        if not row["cycle_footprint_bytes"] or not row["rss_cycle_peak_bytes"]:
            fail("%s: no peak RSS of a collection cycle" % where)
    if row["rss_cycle_peak_bytes"] > row["rss_peak_bytes"]:
        fail("%s: a cycle's RSS peak %r above the run's %r" % (
            where, row["rss_cycle_peak_bytes"], row["rss_peak_bytes"]))
    if row["live_bytes_peak"]:
        ratio = row["rss_peak_bytes"] / row["live_bytes_peak"]
        if abs(row["rss_peak_over_live"] - ratio) > 1e-3 * ratio:
            fail("%s: rss_peak_over_live %r, RSS/live is %r" % (where,
                                                                 row["rss_peak_over_live"], ratio))


def check_latency(row, where):
    """The timed phase must contain collections (the workload sizes it so), every timed
    unit lands in exactly one of the two sets, and every unit during a cycle in exactly one
    of its two phases (marking only, or overlapping a compaction)."""
    need_numbers(row, ["timed_cycles", "unit_p99_during_over_idle"], where)
    for key in UNIT_SPLIT:
        need_numbers(row[key], DIST["unit_us"], where + "." + key)
    if row["timed_cycles"] < 1:
        fail("%s: no collection cycle overlapped the timed phase" % where)
    during, idle = row["unit_during_cycle_us"], row["unit_idle_us"]
    if during["count"] < 1:
        fail("%s: %d cycles overlapped the timed phase but no unit did" % (
            where, row["timed_cycles"]))
    if during["count"] + idle["count"] != row["unit_us"]["count"]:
        fail("%s: %d units during a cycle + %d idle != %d units" % (
            where, during["count"], idle["count"], row["unit_us"]["count"]))
    marking, compacting = row["unit_marking_us"], row["unit_compacting_us"]
    if marking["count"] + compacting["count"] != during["count"]:
        fail("%s: %d units overlapping marking only + %d overlapping a compaction != %d "
             "during a cycle" % (where, marking["count"], compacting["count"],
                                 during["count"]))
    for part in (during, idle, marking, compacting):
        if part["count"] and not part["p50"] <= part["p99"] <= part["max"] <= \
                row["unit_us"]["max"]:
            fail("%s: unit split out of order: %r (all units: %r)" % (where, part,
                                                                        row["unit_us"]))
    need(row, ["mmu_at"], where)
    need(row["mmu_at"], MMU_AT, where + ".mmu_at")
    for key in MMU_AT:
        value = row["mmu_at"][key]
        if value is not None and (isinstance(value, bool) or
                                  not isinstance(value, numbers.Number) or
                                  not 0 <= value <= 1):
            fail("%s.mmu_at.%s: expected null or a number in [0, 1], got %r" % (
                where, key, value))


def run_and_check(bench, out, args):
    command = [bench] + args + ["--json", out]
    print("bench/smoke: " + " ".join(command), flush=True)
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=1500)
    print(run.stdout)
    if run.returncode != 0:
        fail("uffdgc-bench exited with status %d" % run.returncode)
    with open(out) as f:
        rows = json.load(f)
    if not isinstance(rows, list) or not rows:
        fail("expected a non-empty JSON array, got %r" % type(rows))
    ran = sum(check_row(row) for row in rows)
    if not ran:
        fail("every run was skipped")
    return len(rows), ran


def check_usage_errors(bench):
    for args, name in ((["--heap", "lots"], "--heap"), (["--delivery", "pigeon"], "--delivery"),
                       (["--workload", "nope"], "--workload")):
        bad = subprocess.run([bench] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        if bad.returncode != 2 or name not in bad.stderr:
            fail("a bad %s value should exit 2 naming it; got %d: %s"
                 % (name, bad.returncode, bad.stderr.strip()))


def main():
    if len(sys.argv) < 3 or (len(sys.argv) > 3 and sys.argv[3] != "--"):
        print(__doc__)
        sys.exit(2)
    bench, out = sys.argv[1], sys.argv[2]
    runs = [sys.argv[4:]] if len(sys.argv) > 3 else DEFAULT_RUNS
    check_usage_errors(bench)
    total = ran = 0
    for args in runs:
        rows, ok = run_and_check(bench, out, args)
        total += rows
        ran += ok
    print("bench/smoke: OK (%d rows, %d runs checked, %d skipped)" % (total, ran, total - ran))


if __name__ == "__main__":
    main()
