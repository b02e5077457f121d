"""test_installer: the NSIS installer of the Windows agent, under wine.

deploy/windows/build-installer.sh builds branchsync-agent-setup-<version>.exe
into the Windows build (BS_BUILD_DIR); then, in a throwaway wine prefix
(bswine):

- "setup.exe /S" installs branchsync-agent.exe and uninstall.exe into
  C:\\Program Files\\branchsync, the example configuration into
  %ProgramData%\\branchsync\\agent.ini, an Add/Remove Programs entry, and
  registers the service "branchsync-agent" with that file;
- run again over an edited agent.ini and a running service (an upgrade),
  it keeps the file and starts the service again after replacing the .exe
  (the agent logs a clean stop and a new start);
- "uninstall.exe /S" stops and removes the service and the program files
  and the entry, and leaves %ProgramData%\\branchsync and the POS file
  (elsewhere) as they were.

What wine cannot show: the access control list of agent.ini (wine's
icacls is a stub that changes nothing, and wine derives a file's ACL from
its Unix mode), and that Windows keeps a running .exe from being replaced
(Unix lets wine replace it).

Run by ctest as windows.installer in the Windows cross build; skipped
(77) without wine or makensis.
"""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import (Failure, Skip, check, check_eq, create_pos,  # noqa: E402
                    wait_until)
from bswine import Timer, Wine, read_text, write_agent_ini  # noqa: E402

SERVICE = "branchsync-agent"
UNINST_KEY = ("HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\"
              "Uninstall\\branchsync-agent")
POS_TABLES = ("transactions", "transaction_items", "payments")


def build_installer():
    """Runs build-installer.sh on BS_BUILD_DIR; returns the setup .exe."""
    if shutil.which("makensis") is None:
        raise Skip("makensis is not installed (apt-get install nsis)")
    script = bstest.source_file("deploy", "windows", "build-installer.sh")
    r = subprocess.run(["sh", script, bstest.BUILD_DIR], capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        raise Failure("build-installer.sh exited %d:\n%s%s"
                      % (r.returncode, r.stdout, r.stderr))
    setup = r.stdout.strip().splitlines()[-1]
    check(os.path.basename(setup).startswith("branchsync-agent-setup-")
          and os.path.isfile(setup),
          "build-installer.sh made %s" % os.path.basename(setup), r.stdout)
    return setup


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pos_rows(path):
    c = sqlite3.connect(path)
    try:
        return [c.execute('SELECT * FROM "%s" ORDER BY 1' % t).fetchall()
                for t in POS_TABLES]
    finally:
        c.close()


def check_installed(wine):
    pf = wine.drive_c("Program Files", "branchsync")
    for f in ("branchsync-agent.exe", "uninstall.exe", "agent.ini.example"):
        check(os.path.isfile(os.path.join(pf, f)),
              "installed C:\\Program Files\\branchsync\\%s" % f)
    s = wine.service(SERVICE)
    check(s is not None, "the service exists", s)
    r = wine.check_run(["reg", "query",
                        "HKLM\\System\\CurrentControlSet\\Services\\"
                        + SERVICE])
    check('"C:\\Program Files\\branchsync\\branchsync-agent.exe" service run'
          ' -c "C:\\ProgramData\\branchsync\\agent.ini"' in r.stdout,
          "the service runs the installed .exe with the ProgramData file",
          r.stdout)
    r = wine.run(["reg", "query", UNINST_KEY])
    check(r.returncode == 0 and "uninstall.exe" in r.stdout
          and "DisplayVersion" in r.stdout,
          "the Add/Remove Programs entry", r.stdout)


def main(env):
    t = Timer()
    setup = build_installer()
    t.lap("build-installer.sh (agent up to date)")
    wine = Wine(env)
    t.lap("first start of a wine prefix (wineboot)")
    example = bstest.source_file("deploy", "windows", "agent.ini")
    ini = wine.program_data("branchsync", "agent.ini")
    logpath = wine.program_data("branchsync", "agent.log")
    pos_dir = wine.drive_c("POS")
    os.makedirs(pos_dir)
    pos = os.path.join(pos_dir, "pos.db")
    create_pos(pos)
    c = sqlite3.connect(pos)
    c.execute("INSERT INTO transactions(id, total_cost) VALUES (1, 250)")
    c.commit()
    c.close()

    r = wine.run([wine.win_path(setup), "/S"], timeout=300)
    check_eq(r.returncode, 0, "setup /S: exit status")
    check_installed(wine)
    check_eq(digest(ini), digest(example),
             "%ProgramData%\\branchsync\\agent.ini is the example")
    check_eq(wine.service(SERVICE)[0], "STOPPED",
             "the service is registered, not started (the file needs "
             "editing first)")
    t.lap("setup /S")

    # An upgrade over an edited file and a running service.
    write_agent_ini(wine, ini, pos, "cd" * 32,
                    head="; edited after the install\n")
    edited = digest(ini)
    wine.check_run(["C:\\Program Files\\branchsync\\branchsync-agent.exe",
                    "init"])
    wine.check_run(["sc", "start", SERVICE])
    wine.wait_service(SERVICE, "RUNNING")
    wait_until(lambda: "AGENT-START" in read_text(logpath), 60,
               "AGENT-START in %s" % logpath)
    r = wine.run([wine.win_path(setup), "/S"], timeout=300)
    check_eq(r.returncode, 0, "setup /S over a running service: exit status")
    check_installed(wine)
    check_eq(digest(ini), edited, "setup kept the edited agent.ini")
    wine.wait_service(SERVICE, "RUNNING")
    wait_until(lambda: read_text(logpath).count("AGENT-START") == 2, 60,
               "the service started again after the upgrade")
    text = read_text(logpath)
    check(text.count("AGENT-STOP") == 1 and "AGENT-FATAL" not in text,
          "the upgrade stopped the service cleanly", text)
    t.lap("setup /S over a running service")

    # Uninstall with the service running.
    rows = pos_rows(pos)
    r = wine.run(["C:\\Program Files\\branchsync\\uninstall.exe", "/S"])
    check_eq(r.returncode, 0, "uninstall /S: exit status")
    # The uninstaller runs on from a copy of itself in %TEMP%.
    pf = wine.drive_c("Program Files", "branchsync")
    wait_until(lambda: not os.path.exists(pf), 60,
               "C:\\Program Files\\branchsync to go")
    check(wine.service(SERVICE) is None, "the service is gone")
    r = wine.run(["reg", "query", UNINST_KEY])
    check(r.returncode != 0, "the Add/Remove Programs entry is gone")
    text = read_text(logpath)
    check(text.count("AGENT-STOP") == 2 and "AGENT-FATAL" not in text,
          "uninstall stopped the service cleanly", text)
    check_eq(digest(ini), edited, "uninstall left agent.ini as it was")
    check(os.path.isfile(logpath), "uninstall left the log")
    check_eq(pos_rows(pos), rows, "uninstall left the POS file's rows")
    pos_digest = digest(pos)
    time.sleep(1)
    check_eq(digest(pos), pos_digest, "nothing writes the POS file any more")
    t.lap("uninstall /S")


bstest.run(main)
