"""bsbase: what every part of the test harness shares.

Where the sources and the built binaries are (BS_SOURCE_DIR, BS_BUILD_DIR,
BS_HUB_BUILD_DIR), how the programs of the platform under test are run
(BS_AGENT_RUNNER, BS_AGENT_EXE_SUFFIX), the time scale of sanitized builds (BS_TIME_SCALE), BS_KEEP_TMP, the
tables of the example schema, the two outcomes other than a pass (Skip,
Failure) and the check functions that print "ok: ..." lines.
"""

import os
import shlex


SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("BS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(HERE))
BUILD_DIR = os.environ.get("BS_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
KEEP_TMP = os.environ.get("BS_KEEP_TMP") == "1"

# A cross build (tests/cross/) tests an agent built for another platform:
# BS_BUILD_DIR holds it and the other programs of that platform
# (bs-poswrite), which run behind BS_AGENT_RUNNER, a command prefix split
# like a shell line (for example "qemu-aarch64 -L /"), and whose file
# names end in BS_AGENT_EXE_SUFFIX (".exe" on Windows). The hub always
# runs on the build machine, from BS_HUB_BUILD_DIR (default BS_BUILD_DIR).
# A native build sets none of the three.
HUB_BUILD_DIR = os.environ.get("BS_HUB_BUILD_DIR") or BUILD_DIR
AGENT_RUNNER = shlex.split(os.environ.get("BS_AGENT_RUNNER") or "")
AGENT_EXE_SUFFIX = os.environ.get("BS_AGENT_EXE_SUFFIX") or ""
# How the platform under test asks a program to stop: the signal sent to
# it (BS_AGENT_STOP_SIGNAL, default TERM), and whether it needs a
# terminal on stdin for that (BS_AGENT_TTY=1: under wine, SIGINT becomes
# a Windows console's Ctrl+C only for a program with a console).
AGENT_STOP_SIGNAL = os.environ.get("BS_AGENT_STOP_SIGNAL") or "TERM"
AGENT_TTY = os.environ.get("BS_AGENT_TTY") == "1"


UPSTREAM_TABLES = ("transactions", "transaction_items", "payments")

# Master data of the example schema that flows down, with its scope at the
# center: "all" (every branch gets every row) or the column of the center
# table that holds branchsync.branch.id.
DOWN_TABLES = {"products": "all", "branch_prices": "branch_id",
               "stock_allocations": "branch_id"}


# Sanitized builds run several times slower: their tests set BS_TIME_SCALE
# (tests/CMakeLists.txt) and every wait of the harness is stretched by it. The
# scenarios' own figures (events, kills, seeds) stay the same.
TIME_SCALE = max(1.0, float(os.environ.get("BS_TIME_SCALE", "1") or 1))


def scaled(seconds):
    """seconds stretched by BS_TIME_SCALE, for waits on our processes."""
    return seconds * TIME_SCALE


class Skip(Exception):
    """Raised to skip a test (exit 77): a prerequisite is missing."""


class Failure(AssertionError):
    """A check failed."""


def log(msg):
    print(msg, flush=True)


def check(cond, what, detail=""):
    """Assert cond; print "ok: what" when it holds, fail with detail else."""
    if not cond:
        raise Failure("check failed: %s%s" % (what,
                                              (": " + str(detail)) if detail != "" else ""))
    log("ok: " + what)


def check_eq(got, want, what):
    """Assert got == want, showing both when they differ."""
    if got != want:
        raise Failure("check failed: %s: got %r, want %r" % (what, got, want))
    shown = repr(got)
    if len(shown) > 100:
        shown = shown[:97] + "..."
    log("ok: %s (%s)" % (what, shown))


def source_file(*parts):
    return os.path.join(SOURCE_DIR, *parts)
