"""test_service: branchsync-agent.exe as a Windows service, under wine.

In a throwaway wine prefix (bswine): "init" a POS file, "service install
-c agent.ini", and check through wine's service manager (sc, net) that
the service exists, starts, is RUNNING with its log in the default file
(%ProgramData%\\branchsync\\agent.log) and its status listener up, and
that a stop is a clean one: the agent logs AGENT-STOP and no AGENT-FATAL,
and the service ends STOPPED with exit code 0. "service uninstall" stops
a running service the same way and removes it. A service whose
configuration file is missing stops with code 1 and says why in the
default log; "service run" outside the service manager fails with the
reason. No hub is needed: the agent retries a hub that is not there.

Run by ctest as windows.service in the Windows cross build (BS_BUILD_DIR
is that build); skipped (77) without wine.
"""
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq, create_pos, free_port  # noqa: E402
from bswine import Timer, Wine, read_text, write_agent_ini  # noqa: E402

SERVICE = "branchsync-agent"


def agent_exe():
    path = os.path.join(bstest.BUILD_DIR, "agent", "branchsync-agent.exe")
    if not os.path.exists(path):
        raise bstest.Failure("%s not found: build the Windows agent first "
                             "(or set BS_BUILD_DIR)" % path)
    return path


def status(port):
    url = "http://127.0.0.1:%d/status" % port
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, json.loads(r.read())


def start_and_check(wine, port, logpath, starts, how):
    """Starts the service with how ("sc" or "net"); checks it runs."""
    r = wine.run([how, "start", SERVICE])
    check_eq(r.returncode, 0, "%s start %s: exit status" % (how, SERVICE))
    s = wine.wait_service(SERVICE, "RUNNING")
    check_eq(s[0], "RUNNING", "%s start: the service is RUNNING" % how)
    bstest.wait_until(lambda: read_text(logpath).count("AGENT-START") == starts,
                      60, "AGENT-START number %d in %s" % (starts, logpath))
    check(True, "the service logs to %s (%d lines)"
          % (logpath, read_text(logpath).count("\n")))
    code, st = bstest.wait_until(lambda: try_status(port), 30,
                                 "GET /status of the service")
    check(code == 200 and st.get("branch") == "b1",
          "the service answers GET /status on 127.0.0.1:%d" % port, st)


def try_status(port):
    try:
        return status(port)
    except OSError:
        return None


def check_clean_stop(wine, logpath, stops, what):
    s = wine.wait_service(SERVICE, "STOPPED", timeout=60)
    check_eq(s[1:], (0, 0), "%s: the service stopped with exit code 0"
             % what)
    text = read_text(logpath)
    check_eq(text.count("AGENT-STOP"), stops,
             "%s: the agent logged AGENT-STOP" % what)
    check("AGENT-FATAL" not in text and "ERROR" not in text,
          "%s: no error in the log" % what, text)


def main(env):
    exe = agent_exe()
    t = Timer()
    wine = Wine(env)
    t.lap("first start of a wine prefix (wineboot)")
    pos = os.path.join(env.dir, "pos.db")
    ini = os.path.join(env.dir, "agent.ini")
    port = free_port()
    create_pos(pos)
    write_agent_ini(wine, ini, pos, "ab" * 32, http_port=port,
                    extra="backoff_max_ms = 2000\n")
    logpath = wine.program_data("branchsync", "agent.log")

    r = wine.check_run([exe, "init", "-c", wine.win_path(ini)])
    check("initialized" in r.stdout, "init under wine", r.stdout)

    r = wine.run(["sc", "query", SERVICE])
    check(wine.service(SERVICE) is None, "no service before install")
    r = wine.check_run([exe, "service", "install", "-c", wine.win_path(ini)])
    check(wine.win_path(ini) in r.stdout and "warning" not in r.stderr,
          "service install names the configuration file, no warning",
          r.stdout + r.stderr)
    s = wine.service(SERVICE)
    check(s is not None and s[0] == "STOPPED",
          "sc query: the service exists, STOPPED", s)
    r = wine.check_run(["reg", "query",
                        "HKLM\\System\\CurrentControlSet\\Services\\"
                        + SERVICE])
    check(('service run -c "%s"' % wine.win_path(ini)) in r.stdout
          and "0x2" in r.stdout,
          "the service runs \"service run -c <absolute ini>\", started "
          "automatically (Start = 2)", r.stdout)
    check(os.path.isdir(wine.program_data("branchsync")),
          "install made the default folder %ProgramData%\\branchsync")
    t.lap("init and service install")

    start_and_check(wine, port, logpath, 1, "sc")
    t.lap("sc start until RUNNING and logging")
    r = wine.run(["net", "start"])
    check("branchsync agent" in r.stdout,
          "net start lists the service by its display name", r.stdout)

    r = wine.run(["sc", "stop", SERVICE])
    check_eq(r.returncode, 0, "sc stop: exit status")
    check_clean_stop(wine, logpath, 1, "sc stop")
    t.lap("sc stop until STOPPED")

    # A running service: uninstall stops it (cleanly) and removes it.
    start_and_check(wine, port, logpath, 2, "net")
    t.lap("net start until RUNNING and logging")
    r = wine.check_run([exe, "service", "uninstall"])
    check("removed" in r.stdout, "service uninstall", r.stdout)
    text = read_text(logpath)
    check_eq(text.count("AGENT-STOP"), 2,
             "service uninstall: the agent logged AGENT-STOP")
    check("AGENT-FATAL" not in text and "ERROR" not in text,
          "service uninstall: no error in the log", text)
    check(wine.service(SERVICE) is None, "sc query: the service is gone")
    r = wine.run([exe, "service", "uninstall"])
    check(r.returncode == 1 and "error" in r.stderr,
          "service uninstall without a service: exit 1 with the reason",
          r.stderr)
    t.lap("service uninstall of a running service")

    # A configuration file that is not there: the service says so in the
    # default log and stops with code 1.
    missing = os.path.join(env.dir, "missing.ini")
    r = wine.check_run([exe, "service", "install", "-c",
                        wine.win_path(missing)])
    check("warning: the service cannot start yet" in r.stderr
          and "missing.ini" in r.stderr,
          "service install with a missing file warns", r.stderr)
    wine.run(["sc", "start", SERVICE])
    s = wine.wait_service(SERVICE, "STOPPED")
    check_eq(s[1:], (1066, 1), "a service that cannot start stops with "
             "ERROR_SERVICE_SPECIFIC_ERROR, code 1")
    text = read_text(logpath)
    check("AGENT-FATAL" in text and "missing.ini" in text,
          "the reason is in the default log", text)
    wine.check_run([exe, "service", "uninstall"])
    check(wine.service(SERVICE) is None, "removed again")
    t.lap("a service with a missing configuration file")

    r = wine.run([exe, "service", "run", "-c", wine.win_path(ini)])
    check(r.returncode == 1 and "Service Control Manager" in r.stderr,
          "service run outside the service manager: exit 1 with the "
          "reason", r.stderr)


bstest.run(main)
