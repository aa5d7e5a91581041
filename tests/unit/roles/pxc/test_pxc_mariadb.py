"""The pxc role's pod scripts and configuration with the mariadb flavour, against a real mariadbd.

Each member runs in the unpacked root of kubess.local/mariadb-galera (the official mariadb:10.11 image's
contract) as a pod would run it: pxc-entrypoint.sh as PID 1 of namespaces of its own, as uid 999, with the
environment the role's pod template gives (role_data.container_env), the role's my.cnf (role_data.my_cnf) in
/etc/mysql/conf.d, its scripts in /opt/kubess, pxc-initdb.sh in /docker-entrypoint-initdb.d, the bootstrap
ConfigMap's files, a data volume, the memory volume /run/kubess and, with pxc_tls (the default), the TLS Secret's
files, issued for the role's names by the code of kubess.stateful.tls_certificates. Only the network is the test's: a pod's
address is 127.0.0.<ordinal + 1> (z-test.cnf: wsrep_node_address and the listening addresses), members share a
network namespace, and the root's /etc/hosts gives the members' stable names. Needs root.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from image_root import Container, run
from role_data import FILES, NS, SECRETS, container_env, my_cnf, role_vars
from standins import table

from ansible_collections.kubess.stateful.plugins.module_utils._certificates import renew

MYSQL = "999:999"
SOCKET = "/run/mysqld/mysqld.sock"
ENTRYPOINT = ["/bin/bash", "/opt/kubess/pxc-entrypoint.sh"]
SYNCED = r"WSREP: Synchronized with group, ready for connections"
SERVING = r"^Version: '.*' +socket: '/run/mysqld/mysqld\.sock' +port: [1-9]"


def host(ordinal: int) -> str:
    return f"pxc-{ordinal}.pxc.{NS}.svc.cluster.local"


def make_dir(path: Path, owner: int, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, owner, owner)
    path.chmod(mode)
    return path


@functools.cache
def tls_bundle() -> dict[str, str]:
    """The files of the role's TLS Secret (<name>-tls), one CA and certificate for every member, as the role issues
    them: the names of pxc__tls_request, made by the module's code."""
    request = role_vars("mariadb", pxc_namespace=NS, pxc_replicas=3)["pxc__tls_request"][0]
    made = renew({"crt": "", "key": ""}, "Galera CA test", 3650, 365, 30,
                 [{**request, "common_name": request["name"], "crt": "", "key": ""}])
    cert = made["certificates"][0]
    return {"ca.pem": made["ca"]["crt"], "server-cert.pem": cert["crt"], "server-key.pem": cert["key"]}


class Member:
    """One pod's volumes and environment: ordinal, cluster size, and the bootstrap ConfigMap's values."""

    def __init__(self, root: Path, base: Path, ordinal: int, replicas: int = 1, **cnf_vars):
        self.root = root
        self.ordinal = ordinal
        self.address = f"127.0.0.{ordinal + 1}"
        self.data = make_dir(base / "data", 999, 0o750)
        self.run_dir = make_dir(base / "run-kubess", 0, 0o777)
        self.state = make_dir(base / "bootstrap", 0, 0o755)
        conf = make_dir(base / "conf.d", 0, 0o755)
        scripts = make_dir(base / "scripts", 0, 0o755)
        initdb = make_dir(base / "initdb", 0, 0o755)
        for script in FILES.glob("pxc-*.sh"):
            shutil.copy(script, scripts / script.name)
            (scripts / script.name).chmod(0o555)
        shutil.copy(FILES / "pxc-initdb.sh", initdb / "kubess-initdb.sh")
        (initdb / "kubess-initdb.sh").chmod(0o555)
        cnf_vars.setdefault("pxc_mysqld_options", {"innodb_buffer_pool_size": "32M"})
        cnf = my_cnf("mariadb", pxc_namespace=NS, pxc_replicas=replicas, pxc_allow_unsafe_size=True, **cnf_vars)
        (conf / "kubess.cnf").write_text(cnf)
        # The role's provider options (socket.ssl with pxc_tls), and this member's listening address.
        role_options = re.search(r'^wsrep_provider_options="([^"]*)"$', cnf, re.MULTILINE)
        options = (role_options.group(1) + ";" if role_options else "") + f"gmcast.listen_addr=tcp://{self.address}:4567"
        (conf / "z-test.cnf").write_text(
            "[mysqld]\n"
            f"wsrep_node_address={self.address}\n"
            f"wsrep_provider_options=\"{options}\"\n"
            f"wsrep_sst_receive_address={self.address}:4444\n"
            f"bind-address={self.address}\n")
        self.set_state(replicas=str(replicas))
        self.binds = {
            "/var/lib/mysql": self.data,
            "/run/mysqld": make_dir(base / "run-mysqld", 999, 0o1777),
            "/run/kubess": self.run_dir,
            "/etc/mysql/conf.d": conf,
            "/opt/kubess": scripts,
            "/docker-entrypoint-initdb.d": initdb,
            "/etc/pxc-bootstrap": self.state,
        }
        if cnf_vars.get("pxc_tls", True):
            # As the Secret volume gives them: readable by the pod's group (fsGroup 999), mode 0440.
            tls = make_dir(base / "tls", 0, 0o755)
            for name, text in tls_bundle().items():
                (tls / name).write_text(text)
                os.chown(tls / name, 0, 999)
                (tls / name).chmod(0o440)
            self.binds["/etc/mysql/tls"] = tls
        self.env = {**container_env("mariadb", SECRETS, NS), "HOSTNAME": f"pxc-{ordinal}",
                    "HOME": "/var/lib/mysql", "LANG": "C.UTF-8", "KUBESS_POLL_INTERVAL": "1"}

    def set_state(self, **values: str) -> None:
        for name, value in values.items():
            (self.state / name.replace("_", "-")).write_text(value + "\n")

    @contextmanager
    def running(self, network_of: Container | None = None, wait_for: str = SYNCED, **env: str):
        pod = Container(self.root, ENTRYPOINT, user=MYSQL, env={**self.env, **env}, binds=self.binds,
                        hostname=f"pxc-{self.ordinal}", network_of=network_of)
        try:
            pod.wait_for_line(wait_for, timeout=240)
            yield pod
        finally:
            pod.kill()

    def once(self, argv: list[str], **env: str):
        """argv to its end as uid 999 with the member's volumes, in namespaces of its own."""
        return run(self.root, argv, user=MYSQL, env={**self.env, **env}, binds=self.binds, isolated=True)


def probe(pod: Container, member: Member, script: str):
    return pod.run(["/bin/bash", f"/opt/kubess/{script}"], user=MYSQL, env=member.env)


def sql(pod: Container, query: str, user: str = "root", password: str = SECRETS["root-password"],
        options: tuple[str, ...] = ("--batch", "--skip-column-names")) -> str:
    result = pod.run(["mariadb", f"--user={user}", f"--socket={SOCKET}", *options, "--execute", query],
                     user=MYSQL, env={"MYSQL_PWD": password})
    assert result.returncode == 0, result.stderr
    return result.stdout


def sql_error(pod: Container, query: str) -> str:
    result = pod.run(["mariadb", "--user=root", f"--socket={SOCKET}", "--execute", query], user=MYSQL,
                     env={"MYSQL_PWD": SECRETS["root-password"]})
    assert result.returncode != 0, result.stdout
    return result.stderr


def status(pod: Container, *names: str) -> dict[str, str]:
    wanted = ", ".join(f"'{n}'" for n in names)
    out = sql(pod, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({wanted})")
    return dict(line.split("\t", 1) for line in out.splitlines())


def wait_until(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


@pytest.fixture(scope="session")
def root(mariadb_root) -> Path:
    hosts = "127.0.0.1\tlocalhost\n" + "".join(f"127.0.0.{n + 1}\t{host(n)}\n" for n in range(3))
    (mariadb_root / "etc" / "hosts").write_text(hosts)
    # The mount points the kubelet would make for the role's volumes.
    for path in ("run/kubess", "opt/kubess", "etc/pxc-bootstrap", "etc/mysql/tls", "backup"):
        (mariadb_root / path).mkdir(parents=True, exist_ok=True)
    return mariadb_root


@pytest.fixture(scope="module")
def first(root, tmp_path_factory):
    """A one-member cluster, started by the role's entrypoint on an empty volume."""
    member = Member(root, tmp_path_factory.mktemp("first"), 0)
    with member.running() as pod:
        yield member, pod


# --- a new cluster --------------------------------------------------------------------------------------------


def test_a_new_member_bootstraps_as_uid_999_and_is_ready_once_synced(first):
    member, pod = first
    log = pod.output
    assert "this member starts a new cluster" in log and "decision: bootstrap-new" in log
    # Handed over to the image's entrypoint, which initialised the volume, ran pxc-initdb.sh and execed the server.
    assert "running /docker-entrypoint-initdb.d/kubess-initdb.sh" in log
    assert "MariaDB init process done" in log
    cmdline = Path(f"/proc/{pod.pid()}/cmdline").read_bytes().decode().split("\0")[:-1]
    assert cmdline == ["mariadbd", "--wsrep_node_name=pxc-0", "--wsrep_cluster_address=gcomm://"]
    assert pod.status()["Uid"].split()[0] == "999"
    assert status(pod, "wsrep_local_state_comment", "wsrep_ready", "wsrep_cluster_size") == {
        "wsrep_local_state_comment": "Synced", "wsrep_ready": "ON", "wsrep_cluster_size": "1"}
    ready = probe(pod, member, "pxc-readiness.sh")
    assert ready.returncode == 0, ready.stderr
    alive = probe(pod, member, "pxc-liveness.sh")
    assert alive.returncode == 0, alive.stderr
    assert not (member.data / ".kubess-initialising").exists()


def test_readiness_says_not_ready_while_the_member_is_not_synced(first):
    member, pod = first
    sql(pod, "SET GLOBAL wsrep_desync = ON")
    try:
        state = status(pod, "wsrep_local_state_comment")["wsrep_local_state_comment"]
        assert state != "Synced"
        ready = probe(pod, member, "pxc-readiness.sh")
        assert ready.returncode == 1 and f"wsrep_local_state_comment={state}" in ready.stderr
    finally:
        sql(pod, "SET GLOBAL wsrep_desync = OFF")
    wait_until(lambda: probe(pod, member, "pxc-readiness.sh").returncode == 0, "Ready again")


def test_the_users_come_from_the_secret(first):
    _member, pod = first
    for user, key in (("monitor", "monitor-password"), ("mariabackup", "xtrabackup-password"),
                      ("wordpress", "wordpress-password")):
        assert sql(pod, "SELECT CURRENT_USER()", user=user, password=SECRETS[key]).strip().startswith(f"{user}@")
    # The backup tool's privileges, and REPLICATION SLAVE for the binary log archive, from the socket and any host.
    for host in ("localhost", "%"):
        grants = sql(pod, f"SHOW GRANTS FOR 'mariabackup'@'{host}'")
        assert "RELOAD, PROCESS, LOCK TABLES, REPLICATION SLAVE, BINLOG MONITOR ON *.*" in grants
    assert sql(pod, "SHOW DATABASES LIKE 'wordpress'").split() == ["wordpress"]
    # root only at localhost (pxc_root_host), and wsrep_sst_auth set from the Secret, shown masked.
    assert sql(pod, "SELECT Host FROM mysql.user WHERE User = 'root'").split() == ["localhost"]
    assert sql(pod, "SELECT @@wsrep_sst_auth").strip() == "********"


def test_strict_mode_enforcing_is_wsrep_mode_in_mariadb(first):
    _member, pod = first
    assert sql(pod, "SELECT @@wsrep_mode").strip() == "STRICT_REPLICATION,REQUIRED_PRIMARY_KEY"
    # A user's first step on a new cluster (refused with ERROR 4165 under BINLOG_ROW_FORMAT_ONLY).
    sql(pod, "CREATE DATABASE IF NOT EXISTS app; DROP DATABASE app")
    # What pxc_strict_mode ENFORCING refuses: a table without a primary key, an engine Galera does not replicate.
    for refused in ("CREATE TABLE wordpress.no_key (n INT) ENGINE=InnoDB",
                    "CREATE TABLE wordpress.not_replicated (n INT PRIMARY KEY) ENGINE=MyISAM"):
        assert "ERROR 4165 (HY000) at line 1: Galera replication not supported" in sql_error(pod, refused)
    sql(pod, "CREATE TABLE wordpress.fine (n INT PRIMARY KEY) ENGINE=InnoDB")


@pytest.mark.parametrize("options", [("--batch",), ("--batch", "--skip-column-names"), ("-N", "-E"), ("-E",)],
                         ids=" ".join)
def test_the_client_stand_in_prints_what_the_real_client_prints(first, options):
    # test_pxc_scripts.py runs the scripts with standins.py: its output is the real client's.
    _member, pod = first
    names = ("wsrep_local_state_comment", "wsrep_ready")
    real = sql(pod, f"SHOW GLOBAL STATUS WHERE Variable_name IN ('{names[0]}', '{names[1]}')", options=options)
    values = status(pod, *names)
    rows = [[name, values[name]] for name in names]
    expected = table(["Variable_name", "Value"], rows, names="-N" not in options and
                     "--skip-column-names" not in options, vertical="-E" in options)
    assert real == expected


# --- a data directory whose first initialisation never finished ----------------------------------------------


def test_a_half_initialised_data_directory_is_moved_aside_and_initialised_again(root, tmp_path):
    member = Member(root, tmp_path, 0)
    # Killed while the image initialises: after its temporary server started, before the users are made.
    with member.running(wait_for=r"Temporary server started"):
        pass
    assert (member.data / "mysql").is_dir() and (member.data / ".kubess-initialising").exists()
    assert not (member.data / "grastate.dat").exists()
    left = sorted(p.name for p in member.data.iterdir())

    with member.running() as pod:
        log = pod.output
        (aside,) = (member.data / ".kubess-half-initialised").iterdir()
        assert re.fullmatch(r"\d{8}T\d{6}Z", aside.name)
        assert f"moved what it left ({len(left) - 1} entries) to /var/lib/mysql/.kubess-half-initialised/" in log
        assert sorted(p.name for p in aside.iterdir()) == [n for n in left if n != ".kubess-initialising"]
        assert "Initializing database files" in log.split("moved what it left")[1]
        assert probe(pod, member, "pxc-readiness.sh").returncode == 0
        # Not taken for a database (ignore_db_dirs in the role's my.cnf).
        assert "half" not in sql(pod, "SHOW DATABASES")
        assert not (member.data / ".kubess-initialising").exists()


# --- a crash, then a restart ------------------------------------------------------------------------------------


def test_after_a_crash_the_position_comes_from_wsrep_recover_and_the_member_bootstraps_from_it(root, tmp_path):
    member = Member(root, tmp_path, 0)
    with member.running() as pod:
        sql(pod, "CREATE TABLE wordpress.items (n INT PRIMARY KEY); INSERT INTO wordpress.items VALUES (1), (2), (3)")
        committed = int(status(pod, "wsrep_last_committed")["wsrep_last_committed"])
        uuid = status(pod, "wsrep_local_state_uuid")["wsrep_local_state_uuid"]
        assert committed > 0
    # Killed (SIGKILL to the whole pod): grastate.dat keeps seqno -1. (Galera marks a member that is alone in the
    # primary component safe to bootstrap while it runs.)
    grastate = (member.data / "grastate.dat").read_text()
    assert re.search(r"^seqno:\s+-1$", grastate, re.M)
    safe = re.search(r"^safe_to_bootstrap:\s+(\d)$", grastate, re.M).group(1)
    member.set_state(cluster_initialized="true")

    decided = member.once(ENTRYPOINT, KUBESS_DECIDE_ONLY="1")
    assert decided.returncode == 0, decided.stderr
    assert f"recovered position {uuid}:{committed}" in decided.stderr
    assert decided.stdout.strip() == "bootstrap"
    assert (member.run_dir / "state").read_text().split() == [
        "ordinal=0", "empty=0", f"uuid={uuid}", f"seqno={committed}", f"safe_to_bootstrap={safe}"]

    with member.running() as pod:
        assert "decision: bootstrap" in pod.output and "Initializing database files" not in pod.output
        # It goes on with its history (the image's entrypoint would have let it start a new one).
        cmdline = Path(f"/proc/{pod.pid()}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert f"--wsrep_start_position={uuid}:{committed}" in cmdline
        assert status(pod, "wsrep_local_state_uuid")["wsrep_local_state_uuid"] == uuid
        assert int(status(pod, "wsrep_last_committed")["wsrep_last_committed"]) >= committed
        assert sql(pod, "SELECT COUNT(*) FROM wordpress.items").strip() == "3"
        assert probe(pod, member, "pxc-readiness.sh").returncode == 0


# --- a joiner and its State Snapshot Transfer --------------------------------------------------------------------


def test_a_joiner_receives_a_mariabackup_snapshot_with_the_backup_user(root, tmp_path):
    first = Member(root, tmp_path / "0", 0, replicas=2)
    second = Member(root, tmp_path / "1", 1, replicas=2)
    with first.running() as pod0:
        sql(pod0, "CREATE TABLE wordpress.items (n INT PRIMARY KEY); INSERT INTO wordpress.items VALUES (7)")
        with second.running(network_of=pod0) as pod1:
            log = pod1.output
            assert f"decision: join via {host(0)}" in log
            # The image initialised the joiner locally first, then the snapshot replaced its data.
            assert "MariaDB init process done" in log and "WSREP: SST succeeded" in log
            assert "mariabackup" in pod0.output and "Access denied" not in pod0.output
            assert sql(pod1, "SELECT n FROM wordpress.items").strip() == "7"
            for pod, member in ((pod0, first), (pod1, second)):
                assert status(pod, "wsrep_cluster_size")["wsrep_cluster_size"] == "2"
                assert probe(pod, member, "pxc-readiness.sh").returncode == 0
                # pxc_tls (the default): Galera's connections are TLS with the role's Secret files.
                options = sql(pod, "SELECT @@wsrep_provider_options")
                assert "socket.ssl = YES" in options and "socket.ssl_ca = /etc/mysql/tls/ca.pem" in options, options
            # Group communication, the incremental transfer and the snapshot went over TLS, peers checked against the CA.
            assert "listening at ssl://127.0.0.1:4567" in pod0.output and "IST receiver using ssl" in pod1.output
            for pod in (pod0, pod1):
                assert "Using openssl based encryption with socat: with key and crt" in pod.output
                assert "Verifying peer certificate chain for ssl-mode=VERIFY_CA" in pod.output


# --- the binary log archive (pxc_backup_binlogs) -------------------------------------------------------------------

BINLOGS = {"pxc_backup": True, "pxc_backup_binlogs": True}
ARCHIVE = "/backup/binlogs/" + NS + "-pxc/pxc-0"
# The environment the role's pod template gives pxc-0's binlog-archive container (the member on loopback).
ARCHIVER_ENV = {"KUBESS_BINLOG_HOST": "127.0.0.1", "KUBESS_BINLOG_PORT": "3306", "KUBESS_BACKUP_USER": "mariabackup",
                "KUBESS_BACKUP_PASSWORD": SECRETS["xtrabackup-password"], "KUBESS_BINLOG_DIR": ARCHIVE,
                "KUBESS_CLIENT": "mariadb", "KUBESS_BINLOG_RETRY": "1", "HOME": "/tmp"}


def archived(archiver: Container) -> str:
    """The rows and GTIDs of every archived binary log file of pxc-0, decoded by the image's mariadb-binlog."""
    files = archiver.run(["/bin/bash", "-c", f"ls {ARCHIVE}/*/binlog.[0-9]*"], user=MYSQL).stdout.split()
    result = archiver.run(["mariadb-binlog", "--verbose", "--base64-output=decode-rows", *files], user=MYSQL)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_member_archives_its_binary_log_with_the_rows_written_on_another_member(root, tmp_path):
    first = Member(root, tmp_path / "0", 0, replicas=2, **BINLOGS)
    second = Member(root, tmp_path / "1", 1, replicas=2, **BINLOGS)
    backup = make_dir(tmp_path / "backup", 999, 0o750)
    # The binlog-archive container of pxc-0's pod: the pod's network (the member on loopback), the role's scripts
    # and the backup volume; the environment the role's pod template gives it.
    env = ARCHIVER_ENV
    binds = {"/opt/kubess": first.binds["/opt/kubess"], "/backup": backup}
    argv = ["/bin/bash", "/opt/kubess/pxc-binlog-archive.sh"]
    with first.running() as pod0, second.running(network_of=pod0) as pod1:
        archiver = Container(root, argv, user=MYSQL, env=env, binds=binds, network_of=pod0)
        try:
            started = archiver.wait_for_line(rf"from (binlog\.\d+) into {ARCHIVE}/(\d{{8}}T\d{{6}}Z)$", timeout=60)
            before, after = "before-" + started.group(2), "after-" + started.group(2)
            # Written on pxc-1: pxc-0 logs what it applies from the cluster (log_slave_updates), with the cluster's GTID.
            sql(pod1, f"CREATE TABLE wordpress.marks (m VARCHAR(40) PRIMARY KEY); INSERT INTO wordpress.marks VALUES ('{before}')")
            text = wait_until(lambda: before in archived(archiver) and archived(archiver), f"{before} archived")
            assert re.search(r"^#.*\bGTID 1-1-\d+ ", text, re.MULTILINE), text[-2000:]
            # Stopped (a pod's TERM) at once; started again, it goes on in the same directory from the last file.
            assert archiver.stop(timeout=10) == 0 and "stopping" in archiver.output
        finally:
            archiver.kill()
        archiver = Container(root, argv, user=MYSQL, env=env, binds=binds, network_of=pod0)
        try:
            again = archiver.wait_for_line(rf"from (binlog\.\d+) into {ARCHIVE}/(\d{{8}}T\d{{6}}Z)$", timeout=60)
            assert again.group(2) == started.group(2)
            sql(pod0, f"INSERT INTO wordpress.marks VALUES ('{after}')")
            wait_until(lambda: after in archived(archiver), f"{after} archived")
            files = list((backup / "binlogs" / f"{NS}-pxc" / "pxc-0" / started.group(2)).iterdir())
            assert files and all((f.stat().st_uid, f.stat().st_mode & 0o777) == (999, 0o640) for f in files)
        finally:
            archiver.kill()


def backup_env(**extra: str) -> dict[str, str]:
    """The environment the backup Job's template gives pxc-backup.sh, for the member pxc-0 on loopback."""
    return {"KUBESS_BACKUP_HOST": "127.0.0.1", "KUBESS_BACKUP_PORT": "3306", "KUBESS_BACKUP_USER": "mariabackup",
            "KUBESS_BACKUP_PASSWORD": SECRETS["xtrabackup-password"], "KUBESS_BACKUP_TOOL": "mariadb-backup",
            "KUBESS_CLIENT": "mariadb", "KUBESS_BACKUP_FORMAT": "mbstream", "KUBESS_DATADIR": "/var/lib/mysql",
            "KUBESS_BACKUP_DIR": "/backup", "KUBESS_SCRATCH": "/scratch", "KUBESS_BACKUP_PREFIX": f"{NS}-pxc",
            "KUBESS_BACKUP_KEEP": "3", "KUBESS_BACKUP_MEMBERS": "1", "KUBESS_BACKUP_FORCE": "1",
            "KUBESS_IMAGE_NAME": "kubess.local/mariadb-galera", "HOME": "/tmp", **extra}


def restore(root: Path, tmp_path: Path, scripts: Path, backup: Path, name: str, to_time: str):
    """pxc-restore.sh as the restore Job runs it, into a new empty data volume: (its result, the volume)."""
    data = make_dir(tmp_path / "restored", 999, 0o750)
    env = {"KUBESS_RESTORE_FROM": name, "KUBESS_RESTORE_TO_TIME": to_time, "KUBESS_GTID_DOMAIN": "1",
           "KUBESS_BACKUP_TOOL": "mariadb-backup", "KUBESS_STREAM_TOOL": "mbstream", "KUBESS_BACKUP_DIR": "/backup",
           "KUBESS_DATADIR": "/var/lib/mysql", "KUBESS_SCRATCH": "/scratch", "HOME": "/tmp",
           "KUBESS_IMAGE_NAME": "kubess.local/mariadb-galera"}
    binds = {"/opt/kubess": scripts, "/backup": backup, "/var/lib/mysql": data,
             "/scratch": make_dir(tmp_path / "restore-scratch", 999, 0o750)}
    return run(root, ["/bin/bash", "/opt/kubess/pxc-restore.sh"], user=MYSQL, env=env, binds=binds, isolated=True), data


# Starts a server of its own on the data volume (no network, no Galera, no grants) and prints the marks.
READ_MARKS = """set -e
mariadbd --no-defaults --datadir=/var/lib/mysql --socket=/scratch/check.sock --skip-networking --skip-grant-tables \
  --pid-file=/scratch/check.pid --tmpdir=/scratch --log-error=/scratch/check.log &
mariadb-admin --no-defaults --socket=/scratch/check.sock --wait=120 --connect-timeout=2 ping >/dev/null
mariadb --no-defaults --socket=/scratch/check.sock --batch --skip-column-names -e 'SELECT m FROM wordpress.marks; SHUTDOWN'
"""


def test_a_point_in_time_restore_has_the_rows_committed_before_the_time_and_none_after(root, tmp_path):
    """A backup taken by pxc-backup.sh while the member archives its binary log; a row committed after the backup and
    before a time, another at or after it; pxc-restore.sh with that time brings the backup forward with the first
    from the archive, and not the second. Without the archive's files, it restores nothing and says why."""
    (root / "scratch").mkdir(exist_ok=True)
    member = Member(root, tmp_path / "0", 0, **BINLOGS)
    scripts = member.binds["/opt/kubess"]
    backup = make_dir(tmp_path / "backup", 999, 0o750)
    env = ARCHIVER_ENV
    with member.running() as pod0:
        archiver = Container(root, ["/bin/bash", "/opt/kubess/pxc-binlog-archive.sh"], user=MYSQL, env=env,
                             binds={"/opt/kubess": scripts, "/backup": backup}, network_of=pod0)
        try:
            archiver.wait_for_line(rf"from binlog\.\d+ into {ARCHIVE}/\d{{8}}T\d{{6}}Z$", timeout=60)
            sql(pod0, "CREATE TABLE wordpress.marks (m VARCHAR(40) PRIMARY KEY); INSERT INTO wordpress.marks VALUES ('in-backup')")
            taken = run(root, ["/bin/bash", "/opt/kubess/pxc-backup.sh"], user=MYSQL, env=backup_env(),
                        binds={"/opt/kubess": scripts, "/backup": backup, "/var/lib/mysql": member.data,
                               "/scratch": make_dir(tmp_path / "backup-scratch", 999, 0o750)},
                        enter=["nsenter", f"--net=/proc/{pod0.pid()}/ns/net"], proc=True)
            assert taken.returncode == 0, taken.stderr[-3000:]
            (name,) = re.findall(r"^stored (\S+)$", taken.stdout, re.MULTILINE)
            sql(pod0, "INSERT INTO wordpress.marks VALUES ('before-the-time')")
            # The time: the next whole second after that commit; the next row is committed at it or after.
            target = int(time.time()) + 1
            wait_until(lambda: time.time() >= target, "the clock past the time")
            sql(pod0, "INSERT INTO wordpress.marks VALUES ('after-the-time')")
            wait_until(lambda: "after-the-time" in archived(archiver), "the last row archived")
        finally:
            archiver.kill()
    to_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(target))

    result, data = restore(root, tmp_path, scripts, backup, name, to_time)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"applying 1 transactions of the archive of pxc-0, 1-1-\d+ to 1-1-\d+", result.stderr), result.stderr
    assert "safe_to_bootstrap: 1" in result.stdout and "safe_to_bootstrap: 1" in (data / "grastate.dat").read_text()
    checked = run(root, ["/bin/bash", "-c", READ_MARKS], user=MYSQL, isolated=True,
                  binds={"/var/lib/mysql": data, "/scratch": make_dir(tmp_path / "check", 999, 0o750)})
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert sorted(checked.stdout.split()) == ["before-the-time", "in-backup"]

    # The archive's files gone: nothing is restored, and the Job says why.
    for file in (backup / "binlogs").rglob("binlog.*"):
        file.unlink()
    shutil.rmtree(data)
    result, data = restore(root, tmp_path, scripts, backup, name, to_time)
    assert result.returncode == 1 and "no member's archive holds every transaction after the backup's 1-1-" in \
        result.stderr, result.stderr[-3000:]
    assert "the archive of pxc-0 holds neither the backup's last transaction nor the next one" in result.stderr
    assert not (data / "grastate.dat").exists()


# --- stopping a member that waits ------------------------------------------------------------------------------


def test_sigterm_ends_a_waiting_member_at_once_in_the_image(root, tmp_path):
    member = Member(root, tmp_path, 1, replicas=3)
    member.env["KUBESS_POLL_INTERVAL"] = "30"
    # (Its own announcer answers for the other members' loopback addresses here: it waits for pxc-0 to start.)
    with member.running(wait_for=r"waiting for") as pod:
        sent = time.monotonic()
        assert pod.stop(timeout=10) == 143
        assert time.monotonic() - sent < 5
        assert "SIGTERM before the server started: stopping" in pod.output


# --- the configuration the role writes --------------------------------------------------------------------------


@pytest.mark.parametrize("cnf_vars", [
    {"pxc_strict_mode": "DISABLED", "pxc_tls": False},
    {"pxc_strict_mode": "PERMISSIVE", "pxc_tls_secret": "tls"},
    {"pxc_strict_mode": "MASTER", "pxc_mysqld_options": {"max_connections": 300}},
], ids=["disabled-no-tls", "permissive-tls-secret", "master-options"])
def test_the_server_accepts_every_configuration_the_role_writes(root, tmp_path, cnf_vars):
    member = Member(root, tmp_path, 0, **cnf_vars)
    result = member.once(["mariadbd", "--verbose", "--help"])
    assert result.returncode == 0, result.stderr
    values = dict(line.split(None, 1) for line in result.stdout.splitlines() if re.match(r"^wsrep-\S+\s+\S", line))
    assert values["wsrep-provider"] == "/usr/lib/galera/libgalera_smm.so"
    assert values["wsrep-sst-method"] == "mariabackup"
    expected_mode = "STRICT_REPLICATION,REQUIRED_PRIMARY_KEY" \
        if cnf_vars["pxc_strict_mode"] == "MASTER" else None
    assert values.get("wsrep-mode") == expected_mode
    # Galera's own traffic is encrypted with the Secret's files unless pxc_tls is false.
    assert ("socket.ssl=yes" in values.get("wsrep-provider-options", "")) == cnf_vars.get("pxc_tls", True), values
