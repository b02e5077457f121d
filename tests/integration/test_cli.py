"""test_cli: the command-line trio of both binaries.

For branchsync-agent and branchsync-hub: --help and -? exit 0 and show
the usage; --version prints "<name> <project version>" (and "(with fault
sites)" in a -DBS_FAULTS=ON build); a bad option, an
unknown command and a missing command exit 1 with "<name>: error: ..." and
a "hint:" line; a config file that does not exist exits 1 with an error
naming the file. No PostgreSQL needed.

The agent without -c reads its default file, which --help names
(/etc/branchsync/agent.ini); when that file does not exist, every command
exits 1 with an error that names it. "service install|uninstall|run" exit 1
on Linux with the reason (systemd runs the agent there).
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


def check_agent_defaults(env):
    name = "branchsync-agent"
    exe = bstest.binary(name)
    default = "/etc/branchsync/agent.ini"
    r = run_cmd([exe, "--help"])
    check(("(default: %s)" % default) in r.stdout,
          "%s --help: names the default configuration file" % name, r.stdout)
    if os.path.exists(default):
        bstest.log("note: %s exists here; skipping the checks of a missing "
                   "default file" % default)
    else:
        for argv in (["run"], ["status"], ["init"], ["rejects", "list"]):
            r = run_cmd([exe] + argv, timeout=30)
            what = "%s %s without -c" % (name, " ".join(argv))
            check_eq(r.returncode, 1, what + ": exit status")
            check(("%s: error:" % name) in r.stderr
                  and ('"%s" does not exist' % default) in r.stderr,
                  what + ": error names the default file", r.stderr)
            check(("%s: hint:" % name) in r.stderr and "-c FILE" in r.stderr,
                  what + ": hint names -c FILE", r.stderr)

    ini = os.path.join(env.dir, "agent.ini")
    with open(ini, "w") as f:
        f.write("[agent]\nbranch = b1\nkey = k\ndatabase = pos.db\n"
                "hub = tcp://127.0.0.1:1\n[table t]\n")
    for action in ("install", "uninstall", "run"):
        r = run_cmd([exe, "service", action, "-c", ini], timeout=30)
        what = "%s service %s on Linux" % (name, action)
        check_eq(r.returncode, 1, what + ": exit status")
        check(("%s: error:" % name) in r.stderr
              and "Windows services exist only on Windows" in r.stderr,
              what + ": says why", r.stderr)
    check_usage_error(name, run_cmd([exe, "service"]), "service (no action)")
    check_usage_error(name, run_cmd([exe, "service", "start"]),
                      "service start")


def main(env):
    check_binary(env, "branchsync-agent", ("init", "run", "status",
                                           "service install"))
    check_agent_defaults(env)
    check_binary(env, "branchsync-hub", ("migrate", "run", "status",
                                         "branch add"))


bstest.run(main)
