"""test_cli: the command-line trio of both binaries.

For branchsync-agent and branchsync-hub: --help and -? exit 0 and show
the usage; --version prints "<name> <project version>" (and "(with fault
sites)" in a -DBS_FAULTS=ON build); a bad option, an
unknown command and a missing command exit 1 with "<name>: error: ..." and
a "hint:" line; a config file that does not exist exits 1 with an error
naming the file. No PostgreSQL needed.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq, run_cmd  # noqa: E402


def project_version():
    with open(bstest.source_file("CMakeLists.txt")) as f:
        m = re.search(r"project\(branchsync\s+VERSION\s+([0-9.]+)", f.read())
    return m.group(1)


def check_usage_error(name, r, what):
    check_eq(r.returncode, 1, "%s %s: exit status" % (name, what))
    check(("%s: error:" % name) in r.stderr,
          "%s %s: stderr has \"%s: error:\"" % (name, what, name), r.stderr)
    check(("%s: hint:" % name) in r.stderr,
          "%s %s: stderr has a \"hint:\" line" % (name, what), r.stderr)


def check_binary(env, name, commands):
    exe = bstest.binary(name)
    for opt in ("--help", "-?"):
        r = run_cmd([exe, opt])
        check_eq(r.returncode, 0, "%s %s: exit status" % (name, opt))
        check("usage" in r.stdout.lower(),
              "%s %s: prints the usage on stdout" % (name, opt), r.stdout)
        for c in commands:
            check(c in r.stdout, "%s %s: mentions command \"%s\""
                  % (name, opt, c), r.stdout)

    r = run_cmd([exe, "--version"])
    check_eq(r.returncode, 0, "%s --version: exit status" % name)
    # A build with fault sites (-DBS_FAULTS=ON) says so after the version.
    check(r.stdout.strip() in ("%s %s" % (name, project_version()),
                               "%s %s (with fault sites)"
                               % (name, project_version())),
          "%s --version: output" % name, r.stdout)

    check_usage_error(name, run_cmd([exe, "--no-such-option"]),
                      "--no-such-option")
    check_usage_error(name, run_cmd([exe, "no-such-command", "-c",
                                     os.path.join(env.dir, "x.ini")]),
                      "no-such-command")
    check_usage_error(name, run_cmd([exe]), "(no command)")

    missing = os.path.join(env.dir, "does-not-exist.ini")
    r = run_cmd([exe, "run", "-c", missing], timeout=30)
    check_eq(r.returncode, 1, "%s run -c <missing file>: exit status" % name)
    check(("%s: error:" % name) in r.stderr and "does-not-exist.ini"
          in r.stderr, "%s run -c <missing file>: error names the file"
          % name, r.stderr)


def main(env):
    check_binary(env, "branchsync-agent", ("init", "run", "status"))
    check_binary(env, "branchsync-hub", ("migrate", "run", "status",
                                         "branch add"))


bstest.run(main)
