#!/usr/bin/env python3
"""soak: the fault scenarios in a loop with random seeds, run by hand.

    BS_BUILD_DIR=build /usr/bin/python3 tests/bench/soak.py --count 10
    tests/bench/soak.py --count 3 --seed 42 --scenarios hub_kill,net

Each round runs every chosen scenario (tests/integration/test_fault_*.py)
once as a subprocess with BS_SEED set to a seed drawn from --seed, so a
failing round is reproduced with `BS_SEED=<printed seed> python3
tests/integration/test_fault_<name>.py`. Each scenario prints one
"RESULT name key=value ..." line; the soak sums them and prints per
scenario: runs, passes, faults injected, events checked, events lost,
events duplicated. Bounded: --count rounds, each test run at most
--timeout seconds. Exit 0 when every run passed with 0 lost and 0
duplicated, 1 otherwise. Failed runs keep their output in --out (default
a temporary folder).
"""
import argparse
import glob
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "integration")
# The RESULT keys that count injected faults, per scenario.
FAULT_KEYS = ("kills", "restarts", "cuts_mid_push", "lost_acks")


def scenarios():
    return sorted(os.path.basename(p)[len("test_fault_"):-3] for p in
                  glob.glob(os.path.join(TESTS, "test_fault_*.py")))


def parse_result(text):
    for line in text.splitlines():
        if line.startswith("RESULT "):
            parts = line.split()
            return parts[1], dict(kv.split("=", 1) for kv in parts[2:])
    return None, {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1,
                    help="rounds (each runs every scenario once)")
    ap.add_argument("--seed", type=int, default=None,
                    help="master seed (default: from the clock, printed)")
    ap.add_argument("--scenarios", default=",".join(scenarios()),
                    help="comma-separated subset of: %s"
                    % ", ".join(scenarios()))
    ap.add_argument("--timeout", type=int, default=600,
                    help="seconds per test run")
    ap.add_argument("--out", default=None,
                    help="folder for the output of failed runs")
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else int(time.time())
    rng = random.Random(seed)
    names = [s for s in a.scenarios.split(",") if s]
    for n in names:
        if n not in scenarios():
            ap.error("unknown scenario %r" % n)
    out = a.out or tempfile.mkdtemp(prefix="bs-soak-")
    os.makedirs(out, exist_ok=True)
    print("soak: master seed %d, %d rounds of %s; failed runs kept in %s"
          % (seed, a.count, ", ".join(names), out), flush=True)
    tot = {n: {"runs": 0, "pass": 0, "faults": 0, "events": 0, "lost": 0,
               "duplicated": 0, "seconds": 0.0} for n in names}
    failed = []
    t_all = time.monotonic()
    for rnd in range(1, a.count + 1):
        for n in names:
            s = rng.randrange(1, 2 ** 31)
            env = dict(os.environ, BS_SEED=str(s))
            t0 = time.monotonic()
            argv = [sys.executable, os.path.join(TESTS,
                                                 "test_fault_%s.py" % n)]
            try:
                r = subprocess.run(argv, env=env, capture_output=True,
                                   text=True, timeout=a.timeout)
                text, rc = r.stdout + r.stderr, r.returncode
            except subprocess.TimeoutExpired as e:
                text = (e.stdout or b"").decode("utf-8", "replace") \
                    if isinstance(e.stdout, bytes) else (e.stdout or "")
                rc = "timeout"
            dt = time.monotonic() - t0
            _, res = parse_result(text)
            t = tot[n]
            t["runs"] += 1
            t["seconds"] += dt
            ok = rc == 0 and res and res.get("lost") == "0" and \
                res.get("duplicated") == "0"
            if ok:
                t["pass"] += 1
            t["faults"] += sum(int(res.get(k, 0)) for k in FAULT_KEYS)
            t["events"] += int(res.get("events", 0))
            t["lost"] += int(res.get("lost", 0))
            t["duplicated"] += int(res.get("duplicated", 0))
            if not ok:
                path = os.path.join(out, "%s-round%d-seed%d.log"
                                    % (n, rnd, s))
                with open(path, "w") as f:
                    f.write(text)
                failed.append((n, s, rc, path))
            print("round %d %-12s seed %-10d %s %5.1f s  %s" % (
                rnd, n, s, "PASS" if ok else "FAIL(%s)" % rc, dt,
                " ".join("%s=%s" % kv for kv in res.items()
                         if kv[0] != "seed")), flush=True)
    print("\n%-12s %5s %5s %7s %9s %5s %10s %8s" % (
        "scenario", "runs", "pass", "faults", "events", "lost",
        "duplicated", "seconds"))
    for n in names:
        t = tot[n]
        print("%-12s %5d %5d %7d %9d %5d %10d %8.0f" % (
            n, t["runs"], t["pass"], t["faults"], t["events"], t["lost"],
            t["duplicated"], t["seconds"]))
    print("total %.0f s, %d failed run(s)" % (time.monotonic() - t_all,
                                             len(failed)))
    for n, s, rc, path in failed:
        print("FAILED %s seed %d (%s): %s" % (n, s, rc, path))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
