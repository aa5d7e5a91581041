"""Stand-ins for mysqld, mysql and mysqladmin, used to run mysql-replication.sh without a MySQL server.

The test copies this file into a bin directory under the three names; each call appends one JSON line to
$STUB_LOG: the program, its argv, the SQL it read on stdin, the password it read from its option file,
and whether a password reached it through the environment (MYSQL_PWD). The behaviour follows the real
programs where the script depends on it:

- ``mysqld --initialize-insecure --datadir=D`` refuses a non-empty D and creates D/mysql.
- ``mysqld --datadir=D --socket=S ...`` (a server) needs D/mysql, creates S and runs until S is removed
  or it gets SIGTERM.
- ``mysqladmin ping`` succeeds while the socket exists; ``mysqladmin shutdown`` removes it.
- ``mysql`` fails when the socket does not exist; ``CLONE INSTANCE ... DATA DIRECTORY = 'D'`` creates
  D/mysql (or fails when $STUB_CLONE_FAIL is set); ``SHOW REPLICA STATUS`` prints $STUB_REPLICA_STATUS
  (a file); ``SELECT 1`` prints 1. $STUB_MYSQL_FAIL makes every query fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path


def option(argv: list[str], name: str) -> str | None:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def option_file_password(path: str | None) -> str | None:
    """The password of the [client] group, unescaped as the MySQL option file parser does."""
    if path is None:
        return None
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for line in text.splitlines():
        if line.startswith("password="):
            value = line.split("=", 1)[1]
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return re.sub(r"\\(.)", lambda m: m.group(1), value)
    return None


def main() -> int:
    prog = Path(sys.argv[0]).name
    argv = sys.argv[1:]
    stdin = sys.stdin.read() if prog == "mysql" else ""
    record = {
        "prog": prog,
        "argv": argv,
        "stdin": stdin,
        "password": option_file_password(option(argv, "defaults-extra-file")),
        "mysql_pwd_env": "MYSQL_PWD" in os.environ,
        "pid": os.getpid(),
    }
    with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")

    socket = option(argv, "socket")
    if prog == "mysqld":
        datadir = Path(option(argv, "datadir") or "/nonexistent")
        if "--initialize-insecure" in argv:
            if datadir.exists() and any(datadir.iterdir()):
                print(
                    f"[ERROR] --initialize specified but the data directory {datadir} has files in it", file=sys.stderr
                )
                return 1
            (datadir / "mysql").mkdir(parents=True)
            return 0
        if not (datadir / "mysql").is_dir():
            print(f"[ERROR] {datadir} is not a data directory", file=sys.stderr)
            return 1
        sock = Path(socket)

        def terminate(_signum, _frame):  # a real server shuts down on SIGTERM and removes its socket
            sock.unlink(missing_ok=True)
            sys.exit(0)

        signal.signal(signal.SIGTERM, terminate)
        sock.touch()
        deadline = time.monotonic() + 60
        while sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling interval of a wait with a deadline
        return 0

    if socket is None or not Path(socket).exists():
        print(f"ERROR 2002 (HY000): Can't connect to local MySQL server through socket '{socket}'", file=sys.stderr)
        return 1

    if prog == "mysqladmin":
        if "shutdown" in argv:
            Path(socket).unlink()
        elif "ping" in argv:
            print("mysqld is alive")
        return 0

    if os.environ.get("STUB_MYSQL_FAIL"):
        print("ERROR 1045 (28000): Access denied for user 'root'@'localhost'", file=sys.stderr)
        return 1
    clone = re.search(r"CLONE INSTANCE FROM .* DATA DIRECTORY = '([^']+)'", stdin, re.DOTALL)
    if clone:
        if os.environ.get("STUB_CLONE_FAIL"):
            print("ERROR 3862 (HY000): Clone Donor Error: Connect failed", file=sys.stderr)
            return 1
        (Path(clone.group(1)) / "mysql").mkdir(parents=True)
    if "SHOW REPLICA STATUS" in stdin and os.environ.get("STUB_REPLICA_STATUS"):
        sys.stdout.write(Path(os.environ["STUB_REPLICA_STATUS"]).read_text(encoding="utf-8"))
    if stdin.strip() == "SELECT 1;":
        print("1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
