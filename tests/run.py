#!/usr/bin/env python3
"""katrace's test runner: unit binaries (no root) and integration tests
(root, real BPF, real peers). Ends with the plain 'N passed, N failed' line.

usage: tests/run.py [-k SUBSTRING] [--unit-only] [--matrix] [--kernels "6.1 6.12"]

--matrix       only the kernel-dependent tests (modules with KERNEL_MATRIX,
               less their NATIVE_ONLY): what runs inside each kernel's VM
--only-kernels  with --kernels: the unit tests, then the kernels only
--kernels K..  after the native run, the --matrix tests on each kernel K,
               booted by tools/vm/run; their lines are prefixed "[K] " """
import glob
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def run_unit(results, pattern):
    import subprocess
    for binary in sorted(glob.glob(os.path.join(ROOT, "build", "unit", "test_*"))):
        if "." in os.path.basename(binary):
            continue	# the build's dependency files
        p = subprocess.run([binary], capture_output=True, text=True, timeout=300, cwd=ROOT)
        name = os.path.basename(binary)
        lines = [l for l in p.stdout.splitlines() if l.startswith(("PASS ", "FAIL "))]
        for l in lines:
            if pattern and pattern not in l:
                continue
            print(l, flush=True)
            results.append(l.startswith("PASS"))
        if p.returncode and not any(l.startswith("FAIL") for l in lines):
            print(f"FAIL {name}: exited {p.returncode}: {p.stderr.strip()[-500:]}")
            results.append(False)


def run_fuzz_regressions(results, pattern):
    """Every input the fuzzers ever crashed on, and their seeds, under ASan."""
    import subprocess
    for target in ("http", "capture"):
        binary = os.path.join(ROOT, "build", "fuzz", f"regress_fuzz_{target}")
        files = sorted(glob.glob(os.path.join(HERE, "fuzz", "regressions", target, "*")) +
                       glob.glob(os.path.join(HERE, "fuzz", "seeds", target, "*")))
        if not os.path.exists(binary) or not files or (pattern and pattern not in "fuzz"):
            continue
        p = subprocess.run([binary, *files], capture_output=True, text=True, timeout=300)
        ok = p.returncode == 0
        print(f"{'PASS' if ok else 'FAIL'} fuzz_{target} regressions ({len(files)} inputs)"
              + ("" if ok else f": {p.stderr[-1500:]}"), flush=True)
        results.append(ok)


def run_layering(results, pattern):
    """The include graph of user/ against the layer table (tests/layers.py)."""
    import layers
    if pattern and pattern not in "layering":
        return
    found = layers.violations()
    print("PASS layering" if not found else "FAIL layering: " + "; ".join(found), flush=True)
    results.append(not found)


def in_matrix(mod, name):
    return getattr(mod, "KERNEL_MATRIX", False) and name not in getattr(mod, "NATIVE_ONLY", ())


def run_integration(results, pattern, matrix_only=False):
    if os.geteuid() != 0:
        print("integration tests need root: skipped")
        return
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        mod = importlib.import_module(os.path.basename(path)[:-3])
        for name in [n for n in dir(mod) if n.startswith("test_")]:
            full = f"{mod.__name__}.{name}"
            if pattern and pattern not in full:
                continue
            if matrix_only and not in_matrix(mod, name):
                continue
            t0 = time.monotonic()
            try:
                getattr(mod, name)()
                print(f"PASS {full} ({time.monotonic() - t0:.1f}s)", flush=True)
                results.append(True)
            except Exception as e:  # a failing test must not stop the others
                print(f"FAIL {full}: {e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
                results.append(False)


def run_kernel(results, kernel, pattern):
    """The --matrix tests inside a VM booted on kernel (tools/vm/run)."""
    import subprocess
    cmd = [os.path.join(ROOT, "tools", "vm", "run"), "--kernel", kernel, "--",
           sys.executable, os.path.join(HERE, "run.py"), "--matrix"]
    if pattern:
        cmd += ["-k", pattern]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    summary = None
    for line in p.stdout:
        line = line.rstrip("\n")
        if line.startswith(("PASS ", "FAIL ")):
            results.append(line.startswith("PASS"))
        if line.endswith(" failed") and " passed, " in line:
            summary = line
            continue
        print(f"[{kernel}] {line}", flush=True)
    p.wait()
    if summary is None or p.returncode not in (0, 1):
        print(f"FAIL kernel {kernel}: the VM exited {p.returncode} without a summary", flush=True)
        results.append(False)
    else:
        print(f"[{kernel}] {summary} ({time.monotonic() - t0:.0f}s)", flush=True)


def main():
    args = sys.argv[1:]
    pattern = args[args.index("-k") + 1] if "-k" in args else None
    kernels = args[args.index("--kernels") + 1].split() if "--kernels" in args else []
    results = []
    if "--matrix" in args:
        run_integration(results, pattern, matrix_only=True)
    else:
        run_unit(results, pattern)
        run_fuzz_regressions(results, pattern)
        run_layering(results, pattern)
        if "--unit-only" not in args and "--only-kernels" not in args:
            run_integration(results, pattern)
        for k in kernels:
            run_kernel(results, k, pattern)
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
