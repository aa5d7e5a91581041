"""Stand-ins for the server and client programs of both images, to run the pxc pod scripts without them.

The test copies this file, with its own Python in a shebang, into a bin directory under the programs' names
(mysqld, mariadbd, mysql, mariadb, mysqladmin, mariadb-admin); the name it is called by says what it is and which
flavour. Each call appends one JSON line to $STUB_LOG_DIR/<name>.calls: its argv, the password it got through
MYSQL_PWD, its standard input.

The server they talk to is $STUB_SERVER, a JSON file: {"running": bool, "users": {name: password},
"status": {variable: value}}. $STUB_TEMP_SERVER set counts as running (an image's temporary server during an
initialisation). Where the pod scripts depend on it, they behave like the real programs (the real MariaDB client
is compared with this one in test_pxc_mariadb.py):

- the server (``mysqld``, ``mariadbd``): ``--wsrep-recover`` writes "Recovered position: $STUB_RECOVERED" to the
  file of ``--log-error``/``--log_error`` (nothing when unset) and exits; an option the flavour's server does not
  know stops it with "unknown variable" and status 7, unless it is given as ``--loose-<option>``; otherwise it
  prints ``SERVER <args>`` and ``CLUSTER_JOIN <value or <unset>>`` and exits (the test sees what it was started with).
- the client (``mysql``, ``mariadb``): refuses a stopped server (ERROR 2002) and a wrong password (ERROR 1045);
  runs ``--execute``/``-e`` or its standard input: SHOW GLOBAL STATUS WHERE Variable_name IN (...) or LIKE '...',
  SELECT 1, CREATE USER ... IDENTIFIED BY (recorded in the server's users), GRANT (accepted). Output as the real
  client's when it does not write to a terminal: tab-separated rows under a header line, the header left out with
  ``-N``/``--skip-column-names``; a statement ending in ``\\G`` (or ``-E``/``--vertical``) prints each row as a
  "****... N. row ****..." line and one line per column, "name: value" with the names right-aligned, or the
  value alone with ``-N``.
- the admin client (``mysqladmin``, ``mariadb-admin``): ``ping`` exits 0 whenever the server runs, a refused
  login included (as the real one: only a server that does not answer fails), else 1.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

SERVERS = {"mysqld": "percona", "mariadbd": "mariadb"}
CLIENTS = ("mysql", "mariadb")
ADMINS = ("mysqladmin", "mariadb-admin")
# Options of the servers that the pod scripts give and one flavour's server does not know.
UNKNOWN = {
    "percona": set(),
    "mariadb": {"log-error-verbosity", "percona-telemetry-disable"},
}
RECOVERED_LINE = {
    "percona": "2024-01-01T00:00:00.000000Z 0 [Note] [MY-000000] [WSREP] Recovered position: {}\n",
    "mariadb": "2024-01-01  0:00:00 0 [Note] WSREP: Recovered position: {}\n",
}


def record(name: str, argv: list[str], stdin: str = "") -> None:
    entry = {"argv": argv, "pwd": os.environ.get("MYSQL_PWD"), "stdin": stdin}
    with open(Path(os.environ["STUB_LOG_DIR"]) / f"{name}.calls", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def server_state() -> dict:
    path = os.environ.get("STUB_SERVER")
    state = json.loads(Path(path).read_text(encoding="utf-8")) if path and Path(path).exists() else {}
    state.setdefault("users", {})
    state.setdefault("status", {})
    if os.environ.get("STUB_TEMP_SERVER"):
        state["running"] = True
    return state


def save_users(users: dict) -> None:
    path = Path(os.environ["STUB_SERVER"])
    state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    state["users"] = users
    path.write_text(json.dumps(state), encoding="utf-8")


def option_name(arg: str) -> str:
    return arg[2:].split("=", 1)[0].replace("_", "-")


def server(name: str, argv: list[str]) -> int:
    flavor = SERVERS[name]
    record(name, argv)
    for arg in argv:
        if arg.startswith("--") and not arg.startswith("--loose-") and option_name(arg) in UNKNOWN[flavor]:
            sys.stderr.write(f"[ERROR] {name}: unknown variable '{arg[2:]}'\n[ERROR] Aborting\n")
            return 7
    if "--wsrep-recover" in argv or "--wsrep_recover" in argv:
        log = next((a.split("=", 1)[1] for a in argv if option_name(a) == "log-error" and "=" in a), None)
        recovered = os.environ.get("STUB_RECOVERED")
        if log and recovered:
            Path(log).write_text(RECOVERED_LINE[flavor].format(recovered), encoding="utf-8")
        return 0
    print("SERVER " + " ".join([name, *argv]))
    print("CLUSTER_JOIN " + os.environ.get("CLUSTER_JOIN", "<unset>"))
    return 0


def parse_client(argv: list[str]) -> dict:
    """The client options the scripts and the real client share, short and long forms."""
    opts = {"user": os.environ.get("USER", "mysql"), "password": os.environ.get("MYSQL_PWD"), "names": True,
            "vertical": False, "execute": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = arg.split("=", 1)[1] if "=" in arg else None
        if arg.startswith("--user="):
            opts["user"] = value
        elif arg == "-u":
            opts["user"] = argv[i + 1]
            i += 1
        elif arg.startswith("-u"):
            opts["user"] = arg[2:]
        elif arg.startswith("--password=") or (arg.startswith("-p") and len(arg) > 2):
            opts["password"] = value if arg.startswith("--") else arg[2:]
        elif arg in ("-N", "--skip-column-names"):
            opts["names"] = False
        elif arg in ("-E", "--vertical"):
            opts["vertical"] = True
        elif arg.startswith("--execute="):
            opts["execute"] = value
        elif arg == "-e":
            opts["execute"] = argv[i + 1]
            i += 1
        elif re.fullmatch(r"-[BNsrnE]+", arg):
            opts["names"] = opts["names"] and "N" not in arg
            opts["vertical"] = opts["vertical"] or "E" in arg
        i += 1
    return opts


def table(columns: list[str], rows: list[list[str]], names: bool, vertical: bool) -> str:
    out = []
    if vertical:
        width = max(len(c) for c in columns)
        for n, row in enumerate(rows, 1):
            out.append(f"{'*' * 27} {n}. row {'*' * 27}")
            out += [f"{c:>{width}}: {v}" if names else v for c, v in zip(columns, row)]
    else:
        if names and rows:
            out.append("\t".join(columns))
        out += ["\t".join(row) for row in rows]
    return "".join(line + "\n" for line in out)


def statements(sql: str) -> list[tuple[str, bool]]:
    """(statement, vertical) for each statement: ';' ends one, '\\G' ends one printed vertically."""
    parts = re.split(r"(;|\\G)", sql)
    result = []
    for text, end in zip(parts[::2], parts[1::2] + [";"]):
        if text.strip():
            result.append((" ".join(text.split()), end == "\\G"))
    return result


def client(name: str, argv: list[str]) -> int:
    stdin = "" if "--execute" in " ".join(argv) or "-e" in argv else sys.stdin.read()
    record(name, argv, stdin)
    opts = parse_client(argv)
    state = server_state()
    if not state.get("running"):
        sys.stderr.write("ERROR 2002 (HY000): Can't connect to local server through socket"
                         " '/run/mysqld/mysqld.sock' (2)\n")
        return 1
    user, password = opts["user"], opts["password"]
    if state["users"].get(user) != (password or ""):
        sys.stderr.write(f"ERROR 1045 (28000): Access denied for user '{user}'@'localhost'"
                         f" (using password: {'YES' if password else 'NO'})\n")
        return 1
    out = []
    for statement, vertical in statements(opts["execute"] if opts["execute"] is not None else stdin):
        vertical = vertical or opts["vertical"]
        match_in = re.fullmatch(r"SHOW GLOBAL STATUS WHERE Variable_name IN \((.*)\)", statement, re.I)
        match_like = re.fullmatch(r"SHOW GLOBAL STATUS LIKE '(.*)'", statement, re.I)
        match_user = re.fullmatch(r"CREATE USER '([^']*)'@'([^']*)' IDENTIFIED BY '([^']*)'.*", statement, re.I)
        if match_in or match_like:
            if match_in:
                wanted = [w.strip().strip("'").lower() for w in match_in.group(1).split(",")]
                keep = [k for k in state["status"] if k.lower() in wanted]
            else:
                pattern = "^" + re.escape(match_like.group(1)).replace("%", ".*").replace("_", ".") + "$"
                keep = [k for k in state["status"] if re.match(pattern, k, re.I)]
            rows = [[k, str(state["status"][k])] for k in keep]
            out.append(table(["Variable_name", "Value"], rows, opts["names"], vertical))
        elif re.fullmatch(r"SELECT 1", statement, re.I):
            out.append(table(["1"], [["1"]], opts["names"], vertical))
        elif match_user:
            state["users"][match_user.group(1)] = match_user.group(3)
            save_users(state["users"])
        elif re.match(r"GRANT ", statement, re.I):
            pass
        else:
            sys.stderr.write(f"ERROR 1064 (42000): You have an error in your SQL syntax near '{statement[:40]}'\n")
            return 1
    sys.stdout.write("".join(out))
    return 0


def admin(name: str, argv: list[str]) -> int:
    record(name, argv)
    opts = parse_client(argv)
    state = server_state()
    if "ping" not in argv:
        sys.stderr.write(f"{name}: only ping is stood in for\n")
        return 2
    if not state.get("running"):
        sys.stderr.write(f"{name}: connect to server at 'localhost' failed\nerror: 'Can't connect to local server"
                         " through socket '/run/mysqld/mysqld.sock' (2)'\n")
        return 1
    if state["users"].get(opts["user"]) != (opts["password"] or ""):
        sys.stderr.write(f"{name}: connect to server at 'localhost' failed\nerror: 'Access denied for user"
                         f" '{opts['user']}'@'localhost' (using password: YES)'\n")
        return 0
    print("mysqld is alive")
    return 0


def main() -> int:
    name = Path(sys.argv[0]).name
    argv = sys.argv[1:]
    if name in SERVERS:
        return server(name, argv)
    if name in CLIENTS:
        return client(name, argv)
    if name in ADMINS:
        return admin(name, argv)
    sys.stderr.write(f"standins.py called as {name}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
