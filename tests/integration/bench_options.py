#!/usr/bin/env python3
"""bench/options: uffdgc-bench's checks that happen before any run.

usage: bench_options.py UFFDGC_BENCH SCRATCH_DIR

- --json and --plot paths that cannot be written are refused with exit status 2 and a
  message naming the path, before any workload runs;
- --heap takes the sizes the library takes for UFFDGC_HEAP_MAX (K/M/G/T in any case, an
  optional "iB"/"B"; 1 MiB to 64 TiB) and refuses the others naming --heap;
- UFFDGC_BACKEND and UFFDGC_HEAP_MAX stand for --backend and --heap when those are not
  given, and a note says they are ignored when the options are given.
Runs take --scale 1 of gcbench on stw (about a second each)."""
import json
import os
import subprocess
import sys

ACCEPTED = ["1T", "1t", "1TiB", "2GiB", "2gb", "512mb", "512M", "1048576", "64T", "1024K"]
REFUSED = ["lots", "1X", "0", "512K", "65T", "-1M", "1.5G", "1Mx", "M"]


def bench(exe, args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("UFFDGC_")}
    env.update(env_extra or {})
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=300)


def main():
    exe, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    problems = []
    missing_dir = os.path.join(scratch, "no-such-dir", "out.json")
    a_file = os.path.join(scratch, "a-file")
    open(a_file, "w").close()
    quick = ["--workload", "gcbench", "--backend", "stw", "--scale", "1"]

    for args, path in ((["--json", missing_dir], missing_dir), (["--json", scratch], scratch),
                       (["--plot", a_file], a_file),
                       (["--plot", os.path.join(a_file, "plots")], a_file)):
        out = bench(exe, quick + args)
        if out.returncode != 2 or path not in out.stderr or "Completed" in out.stdout:
            problems.append(f"{args}: expected exit 2 before any run naming {path}; got "
                            f"{out.returncode}, stderr {out.stderr.strip()!r}")

    # A size is accepted when the error that follows is the (bad) --json path's.
    for size in ACCEPTED + REFUSED:
        out = bench(exe, quick + ["--heap", size, "--json", missing_dir])
        refused = "--heap" in out.stderr
        if out.returncode != 2 or refused != (size in REFUSED):
            problems.append(f"--heap {size}: expected {'refused' if size in REFUSED else 'accepted'}"
                            f", got exit {out.returncode}: {out.stderr.strip()!r}")

    json_out = os.path.join(scratch, "env.json")
    out = bench(exe, ["--workload", "gcbench", "--scale", "1", "--json", json_out],
                {"UFFDGC_BACKEND": "stw", "UFFDGC_HEAP_MAX": "48M"})
    if out.returncode != 0:
        problems.append(f"run with UFFDGC_BACKEND/UFFDGC_HEAP_MAX failed: {out.stderr}")
    else:
        row = json.load(open(json_out))[0]
        if row["backend"] != "stw" or row["heap_max_bytes"] != 48 << 20:
            problems.append(f"environment not honoured: backend {row['backend']}, heap "
                            f"{row['heap_max_bytes']}")
        for var in ("UFFDGC_BACKEND", "UFFDGC_HEAP_MAX"):
            if var not in out.stderr:
                problems.append(f"no note naming {var} on stderr: {out.stderr!r}")

    out = bench(exe, quick + ["--heap", "32M", "--json", json_out],
                {"UFFDGC_BACKEND": "copy", "UFFDGC_HEAP_MAX": "48M"})
    if out.returncode != 0:
        problems.append(f"run with options over the environment failed: {out.stderr}")
    else:
        row = json.load(open(json_out))[0]
        if row["backend"] != "stw" or row["heap_max_bytes"] != 32 << 20:
            problems.append(f"options did not win: backend {row['backend']}, heap "
                            f"{row['heap_max_bytes']}")
        for var in ("UFFDGC_BACKEND=copy is ignored", "UFFDGC_HEAP_MAX=48M is ignored"):
            if var not in out.stderr:
                problems.append(f"no note {var!r} on stderr: {out.stderr!r}")

    out = bench(exe, quick[:2], {"UFFDGC_BACKEND": "pigeon"})
    if out.returncode != 2 or "UFFDGC_BACKEND" not in out.stderr:
        problems.append(f"UFFDGC_BACKEND=pigeon: expected exit 2 naming it, got "
                        f"{out.returncode}: {out.stderr!r}")

    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    print("bench options checked")


main()
