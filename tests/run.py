#!/usr/bin/env python3
"""katrace's test runner: unit binaries (no root) and integration tests
(root, real BPF, real peers). Ends with the plain 'N passed, N failed' line.

usage: tests/run.py [-k SUBSTRING] [--unit-only]"""
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


def run_integration(results, pattern):
    if os.geteuid() != 0:
        print("integration tests need root: skipped")
        return
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        mod = importlib.import_module(os.path.basename(path)[:-3])
        for name in [n for n in dir(mod) if n.startswith("test_")]:
            full = f"{mod.__name__}.{name}"
            if pattern and pattern not in full:
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


def main():
    args = sys.argv[1:]
    pattern = args[args.index("-k") + 1] if "-k" in args else None
    results = []
    run_unit(results, pattern)
    run_fuzz_regressions(results, pattern)
    run_layering(results, pattern)
    if "--unit-only" not in args:
        run_integration(results, pattern)
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
