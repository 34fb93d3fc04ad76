#!/usr/bin/env python3
"""integration/readme_example: the README's embedding example works as printed.

usage: readme_example.py README.md INCLUDE_DIR LIBRARY_DIR BUILD_DIR CC [CFLAGS...]

Takes the first ```c block of README.md exactly as printed, compiles it with CC against
the library the build just made (`-luffdgc -lpthread`, the flags the README gives), runs it
with UFFDGC_TRACE=1 and no other UFFDGC_* variable, and checks that it exits 0 and prints at
least one collection trace line ("uffdgc: cycle N backend=... pause=..."), once with auto
and once with every backend that uffdgc-probe says can run here. It also checks that every
`build/...uffdgc-*` program the README names exists in BUILD_DIR (the README's `build/` is the default
build directory of `make`)."""
import json
import os
import re
import subprocess
import sys
import tempfile

TRACE_LINE = re.compile(r"^uffdgc: cycle (\d+) backend=(\S+) pause=[0-9.]+ms ", re.M)


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def main():
    readme, include_dir, library_dir, build_dir, cc, *cflags = sys.argv[1:]
    text = open(readme, encoding="utf-8").read()
    blocks = re.findall(r"```c\n(.*?)```", text, re.S)
    if not blocks:
        fail(f"{readme} has no ```c block")
    if "-luffdgc -lpthread" not in text:
        fail("the README no longer says how to link (-luffdgc -lpthread)")

    # Programs the README promises, relative to the build directory (other build/ paths,
    # such as make run's results, exist only after a run).
    tools = sorted(set(re.findall(r"`build/([\w./-]*uffdgc-\w+)", text)))
    if not tools:
        fail("the README names no build/... tool path any more: update this test")
    for path in tools:
        if not os.path.exists(os.path.join(build_dir, path)):
            fail(f"README names build/{path}, which the build does not have")

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "readme_example.c")
        program = os.path.join(tmp, "readme_example")
        with open(source, "w", encoding="utf-8") as f:
            f.write(blocks[0])
        compile_cmd = [cc, *cflags, f"-I{include_dir}", source, "-o", program,
                       f"-L{library_dir}", f"-Wl,-rpath,{library_dir}", "-luffdgc", "-lpthread"]
        out = subprocess.run(compile_cmd, capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"the README example does not compile:\n{' '.join(compile_cmd)}\n{out.stderr}")

        env = {k: v for k, v in os.environ.items() if not k.startswith("UFFDGC_")}
        env["UFFDGC_TRACE"] = "1"
        backends = [None]
        probe = os.path.join(build_dir, "tools", "uffdgc-probe")
        if os.path.exists(probe):
            report = json.loads(subprocess.run([probe, "--json", "--no-measure"], env=env,
                                               capture_output=True, text=True,
                                               check=True).stdout)
            backends += [b["name"] for b in report["backends"]
                         if b["implemented"] and b["available"]]
        for backend in backends:
            run_env = dict(env)
            if backend:
                run_env["UFFDGC_BACKEND"] = backend
            out = subprocess.run([program], env=run_env, capture_output=True, text=True,
                                 timeout=120)
            label = backend or "auto"
            if out.returncode != 0:
                fail(f"[{label}] the example exited {out.returncode}:\n{out.stderr}")
            cycles = TRACE_LINE.findall(out.stderr)
            if not cycles:
                fail(f"[{label}] UFFDGC_TRACE=1 printed no collection line; stderr was:\n"
                     f"{out.stderr}")
            if backend and any(b != backend for _, b in cycles):
                fail(f"[{label}] trace lines name another backend: {cycles}")
            print(f"[{label}] {len(cycles)} collections traced, e.g.: "
                  f"{TRACE_LINE.search(out.stderr).group(0)}...")


main()
