"""Stand-ins for mysqld, mysql and mysqladmin, used to run mysql-replication.sh without a MySQL server.

The test copies this file into a bin directory under the three names; each call appends one JSON line to
$STUB_LOG: the program, its argv, the SQL it read on stdin, the password it read from its option file,
and whether a password reached it through the environment (MYSQL_PWD). They behave like MySQL 8.4's
programs wherever the script depends on them:

- ``mysqld --initialize-insecure --datadir=D`` refuses a non-empty D and writes what the real one does: the
  data dictionary ``mysql.ibd``, the system and undo tablespaces, and the schema directories ``mysql``
  (its CSV log tables), ``performance_schema`` and ``sys``.
- ``mysqld --datadir=D --socket=S ...`` (a server) needs D/mysql.ibd (without a data dictionary the real
  server stops: "Data Dictionary initialization failed"). On a cloned directory it finishes the clone as
  the real first start does: ``#clone`` goes, the schema directory ``mysql`` appears. It creates S, which
  holds its state (data directory, skip-networking, the last clone), and runs until S is removed or it
  gets SIGTERM. With $STUB_SERVER_MUTE it never gets as far as the socket.
- ``mysqladmin ping`` succeeds while the socket exists; ``mysqladmin shutdown`` removes it.
- ``mysql`` fails when the socket does not exist. ``CLONE INSTANCE ... DATA DIRECTORY = 'D'`` refuses an
  existing D and copies InnoDB's files only, as the clone plugin does: ``#clone``, ``mysql.ibd``,
  ``ibdata1``, the undo tablespaces, ``sys/sys_config.ibd``, and no ``mysql`` schema directory (or it
  fails when $STUB_CLONE_FAIL is set); ``performance_schema.clone_status`` then holds its one row.
  ``SHOW REPLICA STATUS`` returns the row in $STUB_REPLICA_STATUS (a JSON object, field -> value, in the
  server's column order), or no row. ``SELECT 1`` and ``SELECT @@global.skip_networking`` answer as a
  server would. $STUB_MYSQL_FAIL makes every query fail.
- The client prints results as the real one does in batch mode: tab-separated rows after a line of column
  names, the names left out with ``-N``/``--skip-column-names``; a statement ended by ``\\G`` (or every
  statement with ``-E``/``--vertical``) prints each row as "*** N. row ***" and one line per column,
  "Name: value" with the names right-aligned, or the bare value when column names are off. An empty
  result prints nothing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

# What mysqld --initialize leaves in a new data directory (a file, or a directory ending in /).
INITIALIZED = ["mysql.ibd", "ibdata1", "undo_001", "undo_002", "auto.cnf", "#innodb_redo/", "mysql/general_log.CSV",
               "mysql/slow_log.CSV", "performance_schema/", "sys/sys_config.ibd"]
# What a clone into a DATA DIRECTORY leaves: InnoDB's files; no schema directory for the CSV tables.
CLONED = ["#clone/", "mysql.ibd", "ibdata1", "undo_001", "undo_002", "#innodb_redo/", "sys/sys_config.ibd"]


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


def make_files(directory: Path, entries: list[str]) -> None:
    for entry in entries:
        path = directory / entry
        if entry.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\0" * 16)


def client_settings(argv: list[str]) -> tuple[bool, bool]:
    """(column names, vertical) from the client's options; the last of -N/--column-names wins."""
    names, vertical = True, False
    for arg in argv:
        if arg in ("-N", "--skip-column-names", "--column-names=0", "--column-names=FALSE"):
            names = False
        elif arg in ("--column-names", "--column-names=1", "--column-names=TRUE"):
            names = True
        elif arg in ("-E", "--vertical"):
            vertical = True
    return names, vertical


def render(columns: list[str], rows: list[list[str]], names: bool, vertical: bool) -> str:
    """A result set as the real client prints it in batch mode."""
    out = []
    if vertical:
        width = max(len(c) for c in columns)
        for number, row in enumerate(rows, 1):
            out.append(f"*************************** {number}. row ***************************")
            out += [f"{column:>{width}}: {value}" if names else value for column, value in zip(columns, row)]
    elif rows:
        if names:
            out.append("\t".join(columns))
        out += ["\t".join(row) for row in rows]
    return "".join(line + "\n" for line in out)


def statements(sql: str) -> list[tuple[str, bool]]:
    """(statement, ended by \\G) for each statement of the input."""
    parts = re.split(r"(;|\\G)", sql)
    return [(text.strip(), end == "\\G") for text, end in zip(parts[::2], parts[1::2] + [";"]) if text.strip()]


def server(argv: list[str]) -> int:
    datadir = Path(option(argv, "datadir") or "/nonexistent")
    if "--initialize-insecure" in argv:
        if datadir.exists() and any(datadir.iterdir()):
            print(f"[ERROR] --initialize specified but the data directory {datadir} has files in it", file=sys.stderr)
            return 1
        datadir.mkdir(parents=True, exist_ok=True)
        make_files(datadir, INITIALIZED)
        return 0
    if not (datadir / "mysql.ibd").is_file():
        print(f"[ERROR] [MY-010020] [Server] Data Dictionary initialization failed ({datadir})", file=sys.stderr)
        return 1
    if (datadir / "#clone").is_dir():  # the first start after a clone finishes it
        (datadir / "#clone").rmdir()
    (datadir / "mysql").mkdir(exist_ok=True)
    sock = Path(option(argv, "socket"))

    def terminate(_signum, _frame):  # a real server shuts down on SIGTERM and removes its socket
        sock.unlink(missing_ok=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminate)
    if os.environ.get("STUB_SERVER_MUTE"):  # a server still starting: no socket yet
        signal.pause()
    state = {"datadir": str(datadir), "skip_networking": "--skip-networking" in argv, "clone": None}
    sock.write_text(json.dumps(state), encoding="utf-8")
    deadline = time.monotonic() + 60
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval of a wait with a deadline
    return 0


def query(sock: Path, statement: str) -> tuple[list[str], list[list[str]]]:
    """Runs one statement on the server behind sock; its columns and rows."""
    state = json.loads(sock.read_text(encoding="utf-8"))
    clone = re.fullmatch(r"CLONE INSTANCE FROM .* DATA DIRECTORY = '([^']+)'.*", statement, re.DOTALL)
    if clone:
        target = Path(clone.group(1))
        if os.environ.get("STUB_CLONE_FAIL"):
            state["clone"] = ["Failed", "3862", "Clone Donor Error: Connect failed"]
            sock.write_text(json.dumps(state), encoding="utf-8")
            raise RuntimeError("ERROR 3862 (HY000): Clone Donor Error: Connect failed")
        if target.exists():
            raise RuntimeError(f"ERROR 1007 (HY000): Can't create database '{target}'; database exists")
        target.mkdir()
        make_files(target, CLONED)
        state["clone"] = ["Completed", "0", ""]
        sock.write_text(json.dumps(state), encoding="utf-8")
        return [], []
    if re.fullmatch(r"SELECT STATE, ERROR_NO, ERROR_MESSAGE FROM performance_schema\.clone_status", statement):
        return ["STATE", "ERROR_NO", "ERROR_MESSAGE"], [state["clone"]] if state["clone"] else []
    if statement == "SHOW REPLICA STATUS":
        if not os.environ.get("STUB_REPLICA_STATUS"):
            return [], []
        fields = json.loads(Path(os.environ["STUB_REPLICA_STATUS"]).read_text(encoding="utf-8"))
        return list(fields), [list(fields.values())]
    if statement == "SELECT 1":
        return ["1"], [["1"]]
    if statement == "SELECT @@global.skip_networking":
        return ["@@global.skip_networking"], [["1" if state["skip_networking"] else "0"]]
    return [], []


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

    if prog == "mysqld":
        return server(argv)

    socket = option(argv, "socket")
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
    names, vertical = client_settings(argv)
    for statement, ends_in_g in statements(stdin):
        try:
            columns, rows = query(Path(socket), statement)
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        if columns:
            sys.stdout.write(render(columns, rows, names, vertical or ends_in_g))
    return 0


if __name__ == "__main__":
    sys.exit(main())
