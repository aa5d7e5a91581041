"""Tests of roles/mysql_replication/files/mysql-replication.sh, the logic that runs inside the MySQL pods.

The script is run here with what a pod would see: its hostname in HOSTNAME, the StatefulSet's settings
and the passwords from the Secret in the environment. The decision part (identity, my.cnf, SQL) needs no
server; ``init``, ``ready`` and ``alive`` run against stand-ins for mysqld, mysql and mysqladmin
(mysql_stub.py) that record every call, so the tests see the order of the steps, the SQL sent on stdin
and the command lines.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parents[3] / "roles" / "mysql_replication" / "files" / "mysql-replication.sh"
BASH = shutil.which("bash") or "/bin/bash"

PASSWORDS = {
    "KUBESS_ROOT_PASSWORD": 'Root-pw"with\\quote',
    "KUBESS_REPLICATION_PASSWORD": "Repl'pw#1",
    "KUBESS_CLONE_PASSWORD": "Clone\\pw'2",
    "KUBESS_APP_PASSWORD": "AppPw3",
}


def flat(text: str) -> str:
    """SQL with every run of whitespace made one space, so that statements compare whatever their line breaks."""
    return " ".join(text.split())


def sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@pytest.fixture
def pod(tmp_path):
    """A pod's environment: settings, passwords, a volume, and stub MySQL programs first on the PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    stub = (HERE / "mysql_stub.py").read_text(encoding="utf-8")
    for prog in ("mysqld", "mysql", "mysqladmin"):
        path = bindir / prog
        path.write_text(f"#!{sys.executable}\n{stub}", encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "volume").mkdir()
    (tmp_path / "run").mkdir()
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "HOSTNAME": "mysql-0",
        "KUBESS_SET_NAME": "mysql",
        "KUBESS_NAMESPACE": "shop",
        "KUBESS_SERVER_ID_BASE": "100",
        "KUBESS_APP_USER": "app",
        "KUBESS_APP_DATABASE": "appdb",
        "KUBESS_DATA_ROOT": str(tmp_path / "volume"),
        "KUBESS_CONF_DIR": str(tmp_path / "conf.d"),
        "KUBESS_SOCKET": str(tmp_path / "run" / "mysqld.sock"),
        "KUBESS_INIT_SOCKET": str(tmp_path / "run" / "init.sock"),
        "KUBESS_INIT_TIMEOUT": "30",
        "STUB_LOG": str(tmp_path / "calls.jsonl"),
        **PASSWORDS,
    }
    return Pod(tmp_path, env)


class Pod:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        self.env = env

    @property
    def volume(self) -> Path:
        return self.root / "volume"

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [BASH, str(SCRIPT), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )

    def serve(self, skip_networking: bool = False) -> None:
        """A server running behind the pod's socket, as the stand-in mysqld leaves it."""
        state = {"datadir": str(self.volume / "data"), "skip_networking": skip_networking, "clone": None}
        Path(self.env["KUBESS_SOCKET"]).write_text(json.dumps(state), encoding="utf-8")

    def calls(self) -> list[dict]:
        log = Path(self.env["STUB_LOG"])
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def identity(result: subprocess.CompletedProcess) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def fqdn(pod_name: str, namespace: str = "shop", service: str = "mysql") -> str:
    return f"{pod_name}.{service}.{namespace}.svc.cluster.local"


# --- identity from the hostname ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "ordinal", "role", "server_id", "clone_source"),
    [
        ("mysql-0", 0, "primary", 100, ""),
        ("mysql-1", 1, "replica", 101, fqdn("mysql-0")),
        ("mysql-2", 2, "replica", 102, fqdn("mysql-1")),
        ("mysql-4", 4, "replica", 104, fqdn("mysql-3")),
        ("mysql-10", 10, "replica", 110, fqdn("mysql-9")),
        ("mysql-3.mysql.shop.svc.cluster.local", 3, "replica", 103, fqdn("mysql-2")),
    ],
)
def test_identity_follows_the_ordinal(pod, hostname, ordinal, role, server_id, clone_source):
    ident = identity(pod.run("identity", HOSTNAME=hostname))
    assert ident["ordinal"] == str(ordinal)
    assert ident["role"] == role
    assert ident["server_id"] == str(server_id)
    assert ident["host"] == fqdn(f"mysql-{ordinal}")
    assert ident["clone_source"] == clone_source
    assert ident["replication_source"] == ("" if ordinal == 0 else fqdn("mysql-0"))


def test_identity_uses_set_service_namespace_and_base(pod):
    ident = identity(
        pod.run(
            "identity",
            HOSTNAME="db-mysql-3",
            KUBESS_SET_NAME="db-mysql",
            KUBESS_SERVICE="db-hl",
            KUBESS_NAMESPACE="prod",
            KUBESS_SERVER_ID_BASE="4000",
            KUBESS_CLUSTER_DOMAIN="k8s.example",
        )
    )
    assert ident == {
        "hostname": "db-mysql-3",
        "flavor": "mysql",
        "ordinal": "3",
        "role": "replica",
        "server_id": "4003",
        "host": "db-mysql-3.db-hl.prod.svc.k8s.example",
        "clone_source": "db-mysql-2.db-hl.prod.svc.k8s.example",
        "replication_source": "db-mysql-0.db-hl.prod.svc.k8s.example",
    }


@pytest.mark.parametrize(
    "hostname",
    [
        "",
        "mysql",
        "mysql-",
        "mysql-abc",
        "mysql-01",
        "mysql--1",
        "mysql-1-2",
        "mysql-1a",
        "mysql-+1",
        "other-1",
        "mysqlx-1",
        "MYSQL-1",
        "mysql-1234567890",
        " mysql-1",
    ],
)
@pytest.mark.parametrize("command", ["identity", "plan", "init"])
def test_bad_hostname_is_rejected(pod, hostname, command):
    result = pod.run(command, HOSTNAME=hostname)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "HOSTNAME" in result.stderr or f"hostname '{hostname.split('.')[0]}'" in result.stderr
    assert pod.calls() == []
    assert not (pod.root / "conf.d").exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KUBESS_SERVER_ID_BASE", "abc", "KUBESS_SERVER_ID_BASE 'abc' is not an integer"),
        ("KUBESS_SERVER_ID_BASE", "0", "KUBESS_SERVER_ID_BASE '0' is not an integer"),
        ("KUBESS_SERVER_ID_BASE", "-5", "KUBESS_SERVER_ID_BASE '-5' is not an integer"),
        ("KUBESS_SERVER_ID_BASE", "", "KUBESS_SERVER_ID_BASE '' is not an integer"),
        ("KUBESS_SERVER_ID_BASE", "4294967296", "is not an integer from 1 to 4294967295"),
        ("KUBESS_NAMESPACE", "", "KUBESS_NAMESPACE '' is not a DNS-1123 label"),
        ("KUBESS_NAMESPACE", "Shop", "KUBESS_NAMESPACE 'Shop' is not a DNS-1123 label"),
        ("KUBESS_SET_NAME", "my_sql", "KUBESS_SET_NAME 'my_sql' is not a DNS-1123 label"),
        ("KUBESS_PORT", "70000", "KUBESS_PORT '70000' is not a TCP port"),
        ("KUBESS_REPLICATION_USER", "re'pl", "KUBESS_REPLICATION_USER 're'pl' is not"),
        ("KUBESS_APP_DATABASE", "", "KUBESS_APP_USER is set but KUBESS_APP_DATABASE is empty"),
    ],
)
def test_bad_settings_are_rejected(pod, variable, value, message):
    result = pod.run("identity", **{variable: value})
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_server_id_may_not_overflow(pod):
    assert (
        identity(pod.run("identity", HOSTNAME="mysql-0", KUBESS_SERVER_ID_BASE="4294967295"))["server_id"]
        == "4294967295"
    )
    result = pod.run("identity", HOSTNAME="mysql-1", KUBESS_SERVER_ID_BASE="4294967295")
    assert result.returncode == 1
    assert "server-id 4294967295 + 1 exceeds 4294967295" in result.stderr


# --- my.cnf fragment -----------------------------------------------------------------------------------


def mycnf(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[mysqld]"
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines[1:])


@pytest.mark.parametrize(
    ("hostname", "server_id", "read_only"),
    [("mysql-0", "100", "OFF"), ("mysql-1", "101", "ON"), ("mysql-2", "102", "ON")],
)
def test_mycnf_sets_identity_gtid_and_read_only(pod, hostname, server_id, read_only):
    result = pod.run("mycnf", HOSTNAME=hostname)
    assert result.returncode == 0, result.stderr
    cnf = mycnf(result.stdout)
    assert cnf["server_id"] == server_id
    assert cnf["report_host"] == fqdn(hostname)
    assert cnf["gtid_mode"] == "ON"
    assert cnf["enforce_gtid_consistency"] == "ON"
    assert cnf["read_only"] == read_only
    assert cnf["super_read_only"] == read_only
    assert cnf["plugin_load_add"] == "mysql_clone.so"
    assert cnf["datadir"] == str(pod.volume / "data")


# --- SQL plan ------------------------------------------------------------------------------------------


def test_replica_plan_clones_previous_ordinal_then_replicates_from_ordinal_0(pod):
    result = pod.run("plan", HOSTNAME="mysql-2")
    assert result.returncode == 0, result.stderr
    out = flat(result.stdout)
    donor = fqdn("mysql-1")
    clone = f"CLONE INSTANCE FROM 'clone'@'{donor}':3306 IDENTIFIED BY '********' DATA DIRECTORY = '{pod.volume / 'data'}' REQUIRE SSL;"
    donor_list = f"SET GLOBAL clone_valid_donor_list = '{donor}:3306';"
    change = (
        f"CHANGE REPLICATION SOURCE TO SOURCE_HOST = '{fqdn('mysql-0')}', SOURCE_PORT = 3306, SOURCE_USER = 'repl', "
        "SOURCE_PASSWORD = '********', SOURCE_AUTO_POSITION = 1,"
    )
    for statement in (donor_list, clone, "RESET REPLICA ALL;", change, "START REPLICA;"):
        assert statement in out
    assert (
        out.index(donor_list)
        < out.index(clone)
        < out.index("RESET REPLICA ALL;")
        < out.index(change)
        < out.index("START REPLICA;")
    )
    assert "mysql-0" not in out.split("CLONE INSTANCE", 1)[1].split(";", 1)[0]
    assert "CREATE USER" not in out
    for secret in PASSWORDS.values():
        assert secret not in out


def test_primary_plan_bootstraps_accounts_and_never_clones(pod):
    result = pod.run("plan", HOSTNAME="mysql-0")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for statement in (
        "ALTER USER 'root'@'localhost' IDENTIFIED BY '********';",
        "CREATE USER 'repl'@'%' IDENTIFIED BY '********';",
        "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';",
        "CREATE USER 'clone'@'%' IDENTIFIED BY '********';",
        "GRANT BACKUP_ADMIN ON *.* TO 'clone'@'%';",
        "CREATE DATABASE IF NOT EXISTS `appdb`;",
        "CREATE USER 'app'@'%' IDENTIFIED BY '********';",
        "GRANT ALL PRIVILEGES ON `appdb`.* TO 'app'@'%';",
    ):
        assert statement in out
    for absent in ("CLONE", "CHANGE REPLICATION SOURCE", "START REPLICA"):
        assert absent not in out
    for secret in PASSWORDS.values():
        assert secret not in out


@pytest.mark.parametrize(
    ("hostname", "step"),
    [("mysql-0", "clone"), ("mysql-0", "replication"), ("mysql-1", "bootstrap"), ("mysql-1", "nonsense")],
)
def test_sql_step_must_fit_the_role(pod, hostname, step):
    result = pod.run("sql", step, HOSTNAME=hostname)
    assert result.returncode == 1
    assert result.stdout == ""


def test_unknown_command_prints_usage(pod):
    result = pod.run("frobnicate")
    assert result.returncode == 2
    assert "Usage: mysql-replication.sh COMMAND" in result.stderr


# --- init against stand-in servers ---------------------------------------------------------------------


def datadir_of(call: dict) -> str | None:
    return next((a.split("=", 1)[1] for a in call["argv"] if a.startswith("--datadir=")), None)


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_no_password_on_a_command_line(calls: list[dict]) -> None:
    for call in calls:
        assert not call["mysql_pwd_env"], call
        for secret in PASSWORDS.values():
            assert all(secret not in arg for arg in call["argv"]), call["argv"]


def test_init_replica_clones_previous_ordinal_then_configures_replication(pod):
    result = pod.run("init", HOSTNAME="mysql-2")
    assert result.returncode == 0, result.stderr
    calls = pod.calls()
    datadir = pod.volume / "data"
    scratch = pod.volume / "scratch"
    steps = [
        ("initialize" if "--initialize-insecure" in c["argv"] else "server", datadir_of(c))
        for c in calls
        if c["prog"] == "mysqld"
    ]
    assert steps == [("initialize", str(scratch)), ("server", str(scratch)), ("server", str(datadir))]
    sql_calls = [c for c in calls if c["prog"] == "mysql"]
    assert len(sql_calls) == 3
    clone, clone_status, replication = ({**c, "stdin": flat(c["stdin"])} for c in sql_calls)
    donor = fqdn("mysql-1")
    assert (
        f"CLONE INSTANCE FROM 'clone'@'{donor}':3306 IDENTIFIED BY {sql_literal(PASSWORDS['KUBESS_CLONE_PASSWORD'])}"
        in clone["stdin"]
    )
    assert f"DATA DIRECTORY = '{datadir}'" in clone["stdin"]
    assert f"clone_valid_donor_list = '{donor}:3306'" in clone["stdin"]
    assert clone["password"] == "", "the scratch server's root has no password yet"
    assert "performance_schema.clone_status" in clone_status["stdin"], "the scratch server says whether the clone completed"
    assert f"--socket={pod.env['KUBESS_INIT_SOCKET']}" in clone_status["argv"]
    assert f"SOURCE_HOST = '{fqdn('mysql-0')}'" in replication["stdin"]
    assert f"SOURCE_PASSWORD = {sql_literal(PASSWORDS['KUBESS_REPLICATION_PASSWORD'])}" in replication["stdin"]
    assert "SOURCE_AUTO_POSITION = 1" in replication["stdin"]
    assert replication["stdin"].endswith("START REPLICA;")
    assert replication["password"] == PASSWORDS["KUBESS_ROOT_PASSWORD"], "the cloned data carries the root password"
    assert_no_password_on_a_command_line(calls)
    shutdowns = [c for c in calls if c["prog"] == "mysqladmin" and "shutdown" in c["argv"]]
    assert len(shutdowns) == 2
    assert not scratch.exists()
    # What the clone copied (the data dictionary), finished by the first start (#clone gone, schema directory).
    assert (datadir / "mysql.ibd").is_file()
    assert not (datadir / "#clone").exists()
    assert (datadir / "mysql").is_dir()
    assert (pod.volume / ".kubess-init-done").read_text(encoding="utf-8") == "role=replica\nserver_id=102\n"
    assert not (pod.volume / ".kubess-init-started").exists()
    cnf = mycnf((pod.root / "conf.d" / "replication.cnf").read_text(encoding="utf-8"))
    assert (cnf["server_id"], cnf["super_read_only"]) == ("102", "ON")
    for secret in PASSWORDS.values():
        assert secret not in result.stdout + result.stderr


def test_init_primary_bootstraps_without_cloning(pod):
    result = pod.run("init", HOSTNAME="mysql-0")
    assert result.returncode == 0, result.stderr
    calls = pod.calls()
    sql_calls = [c for c in calls if c["prog"] == "mysql"]
    assert len(sql_calls) == 1
    sql = sql_calls[0]["stdin"]
    assert f"ALTER USER 'root'@'localhost' IDENTIFIED BY {sql_literal(PASSWORDS['KUBESS_ROOT_PASSWORD'])};" in sql
    assert f"CREATE USER 'repl'@'%' IDENTIFIED BY {sql_literal(PASSWORDS['KUBESS_REPLICATION_PASSWORD'])};" in sql
    assert f"CREATE USER 'clone'@'%' IDENTIFIED BY {sql_literal(PASSWORDS['KUBESS_CLONE_PASSWORD'])};" in sql
    assert f"CREATE USER 'app'@'%' IDENTIFIED BY {sql_literal(PASSWORDS['KUBESS_APP_PASSWORD'])};" in sql
    assert "CLONE" not in sql and "CHANGE REPLICATION SOURCE" not in sql
    shutdown = [c for c in calls if c["prog"] == "mysqladmin" and "shutdown" in c["argv"]]
    assert [c["password"] for c in shutdown] == [
        PASSWORDS["KUBESS_ROOT_PASSWORD"]
    ], "shut down with the new root password"
    assert [datadir_of(c) for c in calls if c["prog"] == "mysqld"] == [str(pod.volume / "data")] * 2
    assert_no_password_on_a_command_line(calls)
    assert (pod.volume / ".kubess-init-done").read_text(encoding="utf-8") == "role=primary\nserver_id=100\n"
    cnf = mycnf((pod.root / "conf.d" / "replication.cnf").read_text(encoding="utf-8"))
    assert (cnf["server_id"], cnf["read_only"]) == ("100", "OFF")


@pytest.mark.parametrize("hostname", ["mysql-0", "mysql-1"])
def test_init_is_idempotent_on_an_initialised_volume(pod, hostname):
    assert pod.run("init", HOSTNAME=hostname).returncode == 0
    first = len(pod.calls())
    (pod.root / "conf.d" / "replication.cnf").unlink()
    again = pod.run("init", HOSTNAME=hostname)
    assert again.returncode == 0, again.stderr
    assert len(pod.calls()) == first, "a restart of an initialised pod starts no server and runs no SQL"
    assert "already initialised" in again.stderr
    assert (pod.root / "conf.d" / "replication.cnf").exists(), "the my.cnf fragment is written on every start"


def test_init_restarts_an_interrupted_initialisation(pod):
    result = pod.run("init", HOSTNAME="mysql-1", STUB_CLONE_FAIL="1")
    assert result.returncode != 0
    assert (pod.volume / ".kubess-init-started").exists()
    assert not (pod.volume / ".kubess-init-done").exists()
    servers = [c["pid"] for c in pod.calls() if c["prog"] == "mysqld" and "--initialize-insecure" not in c["argv"]]
    assert len(servers) == 1
    assert not running(servers[0]), "no temporary server is left running"
    assert not Path(pod.env["KUBESS_INIT_SOCKET"]).exists()
    retry = pod.run("init", HOSTNAME="mysql-1")
    assert retry.returncode == 0, retry.stderr
    assert "did not finish; starting it again" in retry.stderr
    assert (pod.volume / ".kubess-init-done").exists()
    assert not (pod.volume / "scratch").exists()


def test_init_ends_on_sigterm_without_leaving_a_server(pod):
    """As PID 1 of the init container the shell has no default action for SIGTERM; the pod's deletion must end it."""
    script = subprocess.Popen([BASH, str(SCRIPT), "init"], env={**pod.env, "STUB_SERVER_MUTE": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30

        def waiting_for_the_temporary_server():
            calls = pod.calls()
            return (any(c["prog"] == "mysqladmin" for c in calls)
                    and any(c["prog"] == "mysqld" and "--initialize-insecure" not in c["argv"] for c in calls))

        # the script asks mysqladmin about its temporary server, which has recorded its start (on a loaded machine
        # the first mysqladmin call can come before the server's record)
        while not waiting_for_the_temporary_server():
            assert script.poll() is None and time.monotonic() < deadline, script.communicate()
            time.sleep(0.05)  # polling interval of a wait with a deadline
        script.send_signal(signal.SIGTERM)
        _stdout, stderr = script.communicate(timeout=10)
    finally:
        script.kill()
    assert script.returncode == 143
    assert "terminated" in stderr
    servers = [c["pid"] for c in pod.calls() if c["prog"] == "mysqld" and "--initialize-insecure" not in c["argv"]]
    assert servers and not any(running(pid) for pid in servers)


def test_init_leaves_foreign_data_untouched(pod):
    datadir = pod.volume / "data"
    (datadir / "mysql").mkdir(parents=True)
    (datadir / "ibdata1").write_text("existing", encoding="utf-8")
    result = pod.run("init", HOSTNAME="mysql-1")
    assert result.returncode == 0, result.stderr
    assert pod.calls() == []
    assert (datadir / "ibdata1").read_text(encoding="utf-8") == "existing"
    assert not (pod.volume / ".kubess-init-done").exists()


@pytest.mark.parametrize(
    ("hostname", "missing"),
    [("mysql-0", "KUBESS_ROOT_PASSWORD"), ("mysql-1", "KUBESS_CLONE_PASSWORD"), ("mysql-0", "KUBESS_APP_PASSWORD")],
)
def test_init_requires_the_passwords_it_uses(pod, hostname, missing):
    result = pod.run("init", HOSTNAME=hostname, **{missing: ""})
    assert result.returncode == 1
    assert f"{missing} is empty" in result.stderr
    assert not [c for c in pod.calls() if c["prog"] == "mysqld"]
    for secret in PASSWORDS.values():
        assert secret not in result.stderr


# --- probes --------------------------------------------------------------------------------------------


def replica_status(io: str, sql: str) -> dict[str, str]:
    """A row of MySQL 8.4's SHOW REPLICA STATUS (some of its columns, in the server's order)."""
    return {
        "Replica_IO_State": "Waiting for source to send event",
        "Source_Host": fqdn("mysql-0"),
        "Source_Port": "3306",
        "Replica_IO_Running": io,
        "Replica_SQL_Running": sql,
        "Last_Error": "",
        "Seconds_Behind_Source": "0",
        "Executed_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
        "Auto_Position": "1",
    }


@pytest.mark.parametrize(
    ("io", "sql", "ready"),
    [
        ("Yes", "Yes", True),
        ("Connecting", "Yes", False),
        ("No", "Yes", False),
        ("Yes", "No", False),
        ("No", "No", False),
    ],
)
def test_replica_ready_needs_both_replication_threads(pod, io, sql, ready):
    pod.serve()
    status = pod.root / "status.txt"
    status.write_text(json.dumps(replica_status(io, sql)), encoding="utf-8")
    result = pod.run("ready", HOSTNAME="mysql-1", STUB_REPLICA_STATUS=str(status))
    assert (result.returncode == 0) is ready, result.stdout
    if not ready:
        assert f"Replica_IO_Running={io} Replica_SQL_Running={sql}" in result.stdout
    (query,) = (c for c in pod.calls() if c["prog"] == "mysql")
    assert query["stdin"].strip().startswith("SHOW REPLICA STATUS")
    assert not {"-N", "--skip-column-names"} & set(query["argv"]), "vertical rows name their fields only with column names"
    assert query["password"] == PASSWORDS["KUBESS_ROOT_PASSWORD"]
    assert f"--socket={pod.env['KUBESS_SOCKET']}" in query["argv"]
    assert_no_password_on_a_command_line(pod.calls())


def test_replica_status_text_in_an_error_message_does_not_count(pod):
    pod.serve()
    row = replica_status("No", "Yes")
    row["Last_Error"] = "Error reading relay log\nReplica_IO_Running: Yes"
    status = pod.root / "status.txt"
    status.write_text(json.dumps(row), encoding="utf-8")
    result = pod.run("ready", HOSTNAME="mysql-1", STUB_REPLICA_STATUS=str(status))
    assert result.returncode == 1
    assert "Replica_IO_Running=No Replica_SQL_Running=Yes" in result.stdout


def test_replica_without_replication_is_not_ready(pod):
    pod.serve()
    result = pod.run("ready", HOSTNAME="mysql-3")
    assert result.returncode == 1
    assert "replication is not configured" in result.stdout


@pytest.mark.parametrize("hostname", ["mysql-0", "mysql-1"])
def test_not_ready_when_the_server_does_not_answer(pod, hostname):
    result = pod.run("ready", HOSTNAME=hostname)
    assert result.returncode == 1
    assert "does not answer queries" in result.stdout


def test_primary_ready_when_it_answers_a_query_with_networking_on(pod):
    pod.serve()
    assert pod.run("ready", HOSTNAME="mysql-0").returncode == 0
    assert pod.run("ready", HOSTNAME="mysql-0", STUB_MYSQL_FAIL="1").returncode == 1
    assert [c["stdin"] for c in pod.calls() if c["prog"] == "mysql"] == ["SELECT @@global.skip_networking;\n"] * 2
    assert_no_password_on_a_command_line(pod.calls())


def test_primary_not_ready_while_a_server_without_networking_answers(pod):
    """An initialisation's temporary server (the mariadb image's entrypoint runs one on the pod's socket)."""
    pod.serve(skip_networking=True)
    result = pod.run("ready", HOSTNAME="mysql-0")
    assert result.returncode == 1
    assert "no networking" in result.stdout


def test_alive_pings_the_server(pod):
    assert pod.run("alive", HOSTNAME="mysql-1").returncode == 1
    pod.serve()
    assert pod.run("alive", HOSTNAME="mysql-1").returncode == 0
    assert_no_password_on_a_command_line(pod.calls())


# --- the mariadb flavour: decisions, and what start does before the image's entrypoint -------------------
# (the flavour against a real mariadbd: test_mysql_replication_mariadb.py)

MARIADB = {"KUBESS_FLAVOR": "mariadb"}


def test_mariadb_identity_and_bad_flavor(pod):
    assert identity(pod.run("identity", HOSTNAME="mysql-1", **MARIADB))["flavor"] == "mariadb"
    result = pod.run("identity", KUBESS_FLAVOR="percona")
    assert result.returncode == 1
    assert "KUBESS_FLAVOR 'percona' is not mysql or mariadb" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KUBESS_BACKUP_PORT", "0", "KUBESS_BACKUP_PORT '0' is not a TCP port"),
        ("KUBESS_BACKUP_PORT", "65536", "KUBESS_BACKUP_PORT '65536' is not a TCP port"),
        ("KUBESS_BACKUP_PORT", "3306", "KUBESS_BACKUP_PORT is KUBESS_PORT (3306); they must differ"),
    ],
)
def test_mariadb_bad_backup_port_is_rejected(pod, variable, value, message):
    result = pod.run("identity", **MARIADB, **{variable: value})
    assert result.returncode == 1
    assert message in result.stderr
    assert pod.run("identity", **{variable: value}).returncode == 0, "the mysql flavour has no backup port"


@pytest.mark.parametrize(("hostname", "read_only"), [("mysql-0", "OFF"), ("mysql-2", "ON")])
def test_mariadb_mycnf(pod, hostname, read_only):
    result = pod.run("mycnf", HOSTNAME=hostname, **MARIADB)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[mariadb]"
    cnf = dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines[1:])
    assert cnf == {
        "datadir": str(pod.volume / "data"),
        "port": "3306",
        "server_id": str(100 + int(hostname[-1])),
        "report_host": fqdn(hostname),
        "report_port": "3306",
        "log_bin": "binlog",
        "relay_log": "relay-bin",
        "read_only": read_only,
        "log_slave_updates": "ON",
        "binlog_format": "ROW",
        "gtid_strict_mode": "ON",
    }


def test_mariadb_replica_plan_receives_a_backup_then_replicates_from_ordinal_0(pod):
    result = pod.run("plan", HOSTNAME="mysql-2", **MARIADB)
    assert result.returncode == 0, result.stderr
    out = flat(result.stdout)
    assert f"a backup of {fqdn('mysql-1')} from its port 3307" in out
    change = (
        f"CHANGE MASTER TO MASTER_HOST = '{fqdn('mysql-0')}', MASTER_PORT = 3306, MASTER_USER = 'repl', "
        "MASTER_PASSWORD = '********', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 10;"
    )
    gtid = "SET GLOBAL gtid_slave_pos = '<GTID of the backup>';"
    assert out.index("RESET SLAVE ALL;") < out.index(gtid) < out.index(change)
    for absent in ("CLONE", "SOURCE", "CREATE USER"):
        assert absent not in out
    for secret in PASSWORDS.values():
        assert secret not in out


def test_mariadb_primary_plan_leaves_root_and_accounts_to_the_entrypoint(pod):
    result = pod.run("plan", HOSTNAME="mysql-0", **MARIADB)
    assert result.returncode == 0, result.stderr
    sql = [line for line in result.stdout.splitlines() if line and not line.startswith("#")][-2:]
    assert sql == [
        "CREATE USER 'clone'@'localhost' IDENTIFIED BY '********';",
        "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'clone'@'localhost';",
    ]
    assert "MARIADB_* settings" in result.stdout


@pytest.mark.parametrize(
    ("hostname", "command", "env", "message"),
    [
        ("mysql-1", ("sql", "clone"), MARIADB, "mariadb replicas receive a backup"),
        ("mysql-1", ("initialised",), MARIADB, "on ordinal 0 only"),
        ("mysql-0", ("initialised",), {}, "on ordinal 0 only"),
        ("mysql-0", ("serve-backup",), {}, "belongs to the mariadb flavour"),
        ("mysql-0", ("send-backup",), {}, "belongs to the mariadb flavour"),
    ],
)
def test_steps_of_the_other_flavour_or_role_are_refused(pod, hostname, command, env, message):
    result = pod.run(*command, HOSTNAME=hostname, **env)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert pod.calls() == []


def test_mariadb_init_of_the_primary_leaves_the_data_directory_to_the_entrypoint(pod):
    result = pod.run("init", HOSTNAME="mysql-0", **MARIADB)
    assert result.returncode == 0, result.stderr
    assert pod.calls() == [], "no server: the image's entrypoint initialises ordinal 0"
    assert (pod.volume / ".kubess-init-started").exists()
    assert not (pod.volume / ".kubess-init-done").exists()
    assert mycnf_group(pod) == "[mariadb]"


def mycnf_group(pod) -> str:
    lines = (pod.root / "conf.d" / "replication.cnf").read_text(encoding="utf-8").splitlines()
    return next(line for line in lines if line.startswith("["))


@pytest.fixture
def entrypoint(pod):
    """A stand-in for the image's docker-entrypoint.sh: records its arguments and what the data directory held."""
    path = pod.root / "bin" / "docker-entrypoint.sh"
    record = pod.root / "entrypoint.json"
    path.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"data = {str(pod.volume / 'data')!r}\n"
        f"json.dump({{'argv': sys.argv[1:], 'data': sorted(os.listdir(data)) if os.path.isdir(data) else None}},"
        f" open({str(record)!r}, 'w'))\n",
        encoding="utf-8",
    )
    path.chmod(0o755)
    return record


def test_mariadb_start_removes_what_an_interrupted_initialisation_left(pod, entrypoint):
    assert pod.run("init", HOSTNAME="mysql-0", **MARIADB).returncode == 0
    (pod.volume / "data" / "mysql").mkdir(parents=True)  # the entrypoint stopped half-way
    result = pod.run("start", HOSTNAME="mysql-0", **MARIADB)
    assert result.returncode == 0, result.stderr
    assert json.loads(entrypoint.read_text()) == {"argv": ["mariadbd"], "data": None}
    assert "did not finish" in result.stderr


def test_mariadb_start_keeps_an_initialised_data_directory(pod, entrypoint):
    (pod.volume / "data" / "mysql").mkdir(parents=True)
    (pod.volume / ".kubess-init-done").write_text("role=primary\nserver_id=100\n")
    result = pod.run("start", HOSTNAME="mysql-0", **MARIADB)
    assert result.returncode == 0, result.stderr
    assert json.loads(entrypoint.read_text()) == {"argv": ["mariadbd"], "data": ["mysql"]}
