"""The mysql_replication role's mariadb flavour against a real mariadbd, in the image's own root.

kubess.local/mariadb-galera has the official mariadb:10.11 image's contract (tools/images/mariadb-galera/
contract.yaml); its archive (tools/images/build.sh, cached) is unpacked once and every program runs in it with
chroot(8) as the image's user 999, as tests/unit/images/image_root.py does it. Each pod of the StatefulSet is a
``Pod`` here: its volumes are directories bound where the StatefulSet mounts them (the claim, conf.d, the socket
directory, the role's scripts, the initialisation file, a /tmp of its own) and its environment is the role's
(vars/main.yml, rendered with this test's settings). Like the pod's containers, its init container runs to its end
(``mysql-replication.sh init``), then the server container (``start``: the image's entrypoint) and the backup
sidecar (``serve-backup``) run as PID 1 of namespaces of their own.

The pods share one network namespace, the primary's: each listens on its own loopback address (127.0.0.10 +
ordinal, set by a configuration file of the test, as the pod's own IP is in a cluster), and the root's /etc/hosts
gives every pod's stable name that address, as the cluster DNS would. Needs root (unshare, chroot, mount, nsenter).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jinja2
import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
sys.path.insert(0, str(REPO / "tests" / "unit" / "images"))

from image_archive import ImageArchive  # noqa: E402
from image_build import archives  # noqa: E402
from image_root import Container, run  # noqa: E402

import mysql_stub  # noqa: E402

ROLE = REPO / "roles" / "mysql_replication"
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
SCRIPTS_DIR = VARS["mysql_replication__scripts_dir"]
SCRIPT = f"{SCRIPTS_DIR}/mysql-replication.sh"
MYSQL = "999:999"
# What a runtime adds for the image's user: HOME from /etc/passwd, and the image's Env.
RUNTIME_ENV = {"HOME": "/var/lib/mysql", "LANG": "C.UTF-8"}
SOCKET = "/var/run/mysqld/mysqld.sock"
SERVING = r"^Version: '.*' +socket: '/run/mysqld/mysqld\.sock' +port: 3306"

# The role's variables for these pods, and the Secret's values (quotes and backslashes on purpose).
SETTINGS = {
    "mysql_replication_flavor": "mariadb",
    "mysql_replication_name": "mysql",
    "mysql_replication_cluster_domain": "cluster.local",
    "mysql_replication_server_id_base": 100,
    "mysql_replication_port": 3306,
    "mysql_replication_backup_port": 3307,
    "mysql_replication_replication_user": "repl",
    "mysql_replication_clone_user": "clone",
    "mysql_replication_app_user": "shop",
    "mysql_replication_app_database": "shop",
}
NAMESPACE = "shop"
SECRET = {
    "root-password": "Root'pw\"with\\ quotes",
    "replication-password": "Repl'pw#1",
    "clone-password": "Clone\\pw'2",
    "app-password": "App pw 3",
}


def pod_environment(hostname: str, secret: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the role gives a pod: mysql_replication__env and the flavour's image settings."""
    secret = SECRET if secret is None else secret
    variables = {**VARS["mysql_replication__env"], **VARS["mysql_replication__image_init_env"]["mariadb"]}
    env = {**RUNTIME_ENV, "HOSTNAME": hostname}
    for name, value in variables.items():
        if isinstance(value, dict) and "secret" in value:
            env[name] = secret[value["secret"]]
        elif isinstance(value, dict):
            assert value == {"field": "metadata.namespace"}
            env[name] = NAMESPACE
        else:
            env[name] = jinja2.Template(str(value)).render(**SETTINGS)
    return env


def fqdn(ordinal: int) -> str:
    return f"mysql-{ordinal}.mysql.{NAMESPACE}.svc.cluster.local"


def address(ordinal: int) -> str:
    return f"127.0.0.{10 + ordinal}"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    _ref, archive = archives("mariadb-galera")["mariadb-galera"]
    target = tmp_path_factory.mktemp("mysql-replication-mariadb-rootfs")
    ImageArchive(archive).unpack(target)
    hosts = "127.0.0.1\tlocalhost\n" + "".join(f"{address(n)}\t{fqdn(n)} mysql-{n}\n" for n in range(4))
    (target / "etc" / "hosts").write_text(hosts)
    (target / SCRIPTS_DIR.lstrip("/")).mkdir(parents=True)  # the scripts' mount point, as the runtime makes it
    return target


# A pod's directories: owner and mode, as the cluster makes them.
POD_DIRECTORIES = {
    "volume": (999, 0o750),  # the claim, as the NFS directory is made for the volume layout
    "conf.d": (999, 0o777),  # emptyDir volumes
    "run": (999, 0o777),
    "initdb": (0, 0o755),  # the ConfigMap item's directory
    "tmp": (0, 0o1777),  # the container's own /tmp
}


class Pod:
    """One ordinal: its volumes, its environment, and its containers once started."""

    def __init__(self, root: Path, base: Path, ordinal: int, secret: dict[str, str] | None = None):
        self.root = root
        self.ordinal = ordinal
        self.hostname = f"mysql-{ordinal}"
        self.env = pod_environment(self.hostname, secret)
        dirs = {name: base / name for name in POD_DIRECTORIES}
        for name, (owner, mode) in POD_DIRECTORIES.items():
            dirs[name].mkdir(parents=True)
            os.chown(dirs[name], owner, owner)
            dirs[name].chmod(mode)
        self.volume, self.initdb = dirs["volume"], dirs["initdb"]
        # The test's own configuration: this pod's address (in a cluster, the pod's own IP).
        (dirs["conf.d"] / "zz-listen.cnf").write_text(f"[mariadb]\nbind_address = {address(ordinal)}\n")
        hook = shutil.copy(ROLE / "files" / "mysql-replication-initdb.sh", self.initdb / "90-kubess-initialised.sh")
        Path(hook).chmod(0o555)
        self.binds = {
            "/var/lib/mysql": self.volume,
            "/etc/mysql/conf.d": dirs["conf.d"],
            "/run/mysqld": dirs["run"],
            SCRIPTS_DIR: ROLE / "files",
            "/docker-entrypoint-initdb.d": self.initdb,
            "/tmp": dirs["tmp"],
        }
        self.containers: list[Container] = []

    @property
    def data(self) -> Path:
        return self.volume / "data"

    def init(self, network_of: Container | None, **env: str) -> subprocess.CompletedProcess:
        """The init container, to its end; in the pods' network namespace (none for the first pod)."""
        argv = ["bash", SCRIPT, "init"]
        environment = {**self.env, **env}
        if network_of is None:
            return run(self.root, argv, user=MYSQL, env=environment, binds=self.binds, isolated=True)
        enter = ["nsenter", f"--net=/proc/{network_of.pid()}/ns/net"]
        return run(self.root, argv, user=MYSQL, env=environment, binds=self.binds, enter=enter, proc=True)

    def start(self, network_of: Container | None, while_starting=None) -> None:
        """The server container and, once the server serves, the backup sidecar; each as PID 1 of its own
        namespaces. while_starting(pod) runs in between, before the server serves."""
        self.server = self._container("start", network_of)
        if while_starting:
            while_starting(self)
        self.server.wait_for_line(SERVING, timeout=180)
        self.sidecar = self._container("serve-backup", self.server)
        self.sidecar.wait_for_line(rf"serving backups of .* on {re.escape(address(self.ordinal))}, port 3307")

    def _container(self, command: str, network_of: Container | None) -> Container:
        container = Container(self.root, ["bash", SCRIPT, command], user=MYSQL, env=self.env, binds=self.binds,
                              hostname=self.hostname, network_of=network_of)
        self.containers.append(container)
        return container

    def script(self, command: str) -> subprocess.CompletedProcess:
        """mysql-replication.sh COMMAND beside the server, as a probe runs (exec in the server container)."""
        return self.server.run(["bash", SCRIPT, command], user=MYSQL, env=self.env)

    def sql(self, query: str, *options: str) -> str:
        result = self.server.run(["mariadb", "--user=root", f"--socket={SOCKET}", "--batch", *options,
                                  "--execute", query], user=MYSQL, env={"MYSQL_PWD": self.env["KUBESS_ROOT_PASSWORD"]})
        assert result.returncode == 0, result.stderr
        return result.stdout

    def kill(self) -> None:
        for container in self.containers:
            container.kill()


def wait_until(what: str, check, timeout: float = 120):
    """check()'s first true result, asked again each time it is not, until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.2)  # polling interval of a wait with a deadline


@pytest.fixture(scope="module")
def pods(root, tmp_path_factory):
    made: list[Pod] = []

    def make(ordinal: int, secret: dict[str, str] | None = None) -> Pod:
        pod = Pod(root, tmp_path_factory.mktemp(f"mysql-{ordinal}"), ordinal, secret)
        made.append(pod)
        return pod

    yield make
    for pod in made:
        pod.kill()


def ready(pod: Pod) -> subprocess.CompletedProcess:
    return pod.script("ready")


@pytest.fixture(scope="module")
def primary(pods) -> Pod:
    """Ordinal 0, initialised by the image's entrypoint; caught half-way, while its temporary server runs."""
    pod = pods(0)
    result = pod.init(None)
    assert result.returncode == 0, result.stderr
    assert "the image's entrypoint initialises" in result.stderr
    assert (pod.volume / ".kubess-init-started").exists() and not pod.data.exists()
    # An initialisation file of the test's own, before the role's: it waits on a pipe the test opens.
    gate = pod.initdb / "gate"
    os.mkfifo(gate)
    (pod.initdb / "50-gate.sh").write_text("#!/bin/bash\nread -r _ </docker-entrypoint-initdb.d/gate\n")
    (pod.initdb / "50-gate.sh").chmod(0o555)

    def at_the_gate(starting: Pod) -> None:
        starting.server.wait_for_line(r"running /docker-entrypoint-initdb\.d/50-gate\.sh")
        starting.while_initialising = ready(starting)
        with open(gate, "w", encoding="utf-8") as fh:  # lets the initialisation go on
            fh.write("go\n")

    pod.start(None, at_the_gate)
    return pod


def test_the_entrypoint_initialises_the_primary_and_it_is_ready_only_when_serving(primary):
    assert primary.while_initialising.returncode == 1
    assert "no networking" in primary.while_initialising.stdout
    log = primary.server.output
    assert "running /docker-entrypoint-initdb.d/90-kubess-initialised.sh" in log
    assert "creating the backup account clone@localhost" in log
    assert "MariaDB init process done. Ready for start up." in log
    assert (primary.volume / ".kubess-init-done").read_text() == "role=primary\nserver_id=100\n"
    assert not (primary.volume / ".kubess-init-started").exists()
    result = ready(primary)
    assert result.returncode == 0, result.stdout
    assert primary.script("alive").returncode == 0
    # What the image's entrypoint made from the role's MARIADB_* settings, and the role's own account.
    users = primary.sql("SELECT CONCAT(user, '@', host) FROM mysql.user ORDER BY 1", "--skip-column-names").split()
    assert {"root@localhost", "shop@%", "repl@%", "clone@localhost"} <= set(users)
    assert not [u for u in users if u.startswith("root@") and u != "root@localhost"], users
    assert "RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR" in primary.sql("SHOW GRANTS FOR clone@localhost")
    variables = primary.sql("SELECT @@server_id, @@read_only, @@gtid_strict_mode, @@log_bin, @@datadir",
                            "--skip-column-names").split()
    assert variables == ["100", "0", "1", "1", "/var/lib/mysql/data/"]


def seeded(pod: Pod, source: Pod) -> Pod:
    """pod's init container seeds it from source's sidecar; then its server and sidecar run, Ready."""
    pod.init_result = pod.init(source.server)
    assert pod.init_result.returncode == 0, pod.init_result.stderr
    pod.start(source.server)
    wait_until(f"{pod.hostname} Ready", lambda: ready(pod).returncode == 0)
    return pod


def seed_gtid(pod: Pod) -> str:
    return re.search(r"GTID '([0-9,-]*)'", pod.init_result.stderr).group(1)


def rows(pod: Pod) -> list[str]:
    return pod.sql("SELECT item FROM shop.orders ORDER BY id", "--skip-column-names").splitlines()


@pytest.fixture(scope="module")
def replica(primary, pods) -> Pod:
    """Ordinal 1, seeded from ordinal 0 after a first row was written there."""
    primary.sql("CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(32)) ENGINE=InnoDB;"
                " INSERT INTO shop.orders VALUES (1, 'before ordinal 1')")
    primary.gtid_before_1 = primary.sql("SELECT @@gtid_binlog_pos", "--skip-column-names").strip()
    return seeded(pods(1), primary)


@pytest.fixture(scope="module")
def replica_of_replica(replica, pods) -> Pod:
    """Ordinal 2, seeded from ordinal 1 with nothing written since ordinal 1 was: ordinal 1's own binary log then
    holds nothing but what it applied, and its backup's position is what it applied from ordinal 0."""
    replica.gtid_before_2 = replica.sql("SELECT @@gtid_current_pos", "--skip-column-names").strip()
    return seeded(pods(2), replica)


def test_a_replica_is_seeded_by_a_backup_streamed_from_the_primary_and_replicates(primary, replica):
    assert f"receiving a backup of {fqdn(0)}" in replica.init_result.stderr
    assert seed_gtid(replica) == primary.gtid_before_1
    assert (replica.volume / ".kubess-init-done").read_text() == "role=replica\nserver_id=101\n"
    assert not (replica.volume / "scratch").exists()
    sidecar = primary.sidecar.output
    assert "streaming a backup of /var/lib/mysql/data" in sidecar and "completed OK!" in sidecar
    assert "missing required privilege" not in sidecar
    assert rows(replica) == ["before ordinal 1"]
    primary.sql("INSERT INTO shop.orders VALUES (2, 'after ordinal 1')")
    wait_until("replicated", lambda: rows(replica) == ["before ordinal 1", "after ordinal 1"])
    status = vertical_fields(replica.sql("SHOW REPLICA STATUS", "--vertical"))
    assert (status["Master_Host"], status["Using_Gtid"]) == (fqdn(0), "Slave_Pos")
    assert replica.sql("SELECT @@server_id, @@read_only", "--skip-column-names").split() == ["101", "1"]


def vertical_fields(output: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in output.splitlines()[1:]:
        name, _sep, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


@pytest.mark.parametrize(
    ("stop", "start", "io", "sql"),
    [("STOP SLAVE SQL_THREAD", "START SLAVE SQL_THREAD", "Yes", "No"),
     ("STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD", "No", "Yes"),
     ("STOP SLAVE", "START SLAVE", "No", "No")],
)
def test_a_replica_is_ready_only_while_both_replication_threads_run(replica, stop, start, io, sql):
    replica.sql(stop)
    result = ready(replica)
    assert result.returncode == 1
    assert f"not ready: Slave_IO_Running={io} Slave_SQL_Running={sql}" in result.stdout
    replica.sql(start)
    wait_until("Ready again", lambda: ready(replica).returncode == 0)


def test_a_replica_of_a_replica_is_seeded_from_the_previous_ordinal(primary, replica, replica_of_replica):
    second = replica_of_replica
    assert f"receiving a backup of {fqdn(1)}" in second.init_result.stderr
    assert "streaming a backup" in replica.sidecar.output, "seeded from ordinal 1, not from the primary"
    assert primary.sidecar.output.count("streaming a backup") == 1
    primary_gtid = primary.sql("SELECT @@gtid_binlog_pos", "--skip-column-names").strip()
    assert seed_gtid(second) == replica.gtid_before_2 == primary_gtid
    assert rows(second) == ["before ordinal 1", "after ordinal 1"]
    primary.sql("INSERT INTO shop.orders VALUES (3, 'after ordinal 2')")
    for pod in (replica, second):
        wait_until("replicated", lambda pod=pod: rows(pod)[-1:] == ["after ordinal 2"])
    status = vertical_fields(second.sql("SHOW REPLICA STATUS", "--vertical"))
    assert status["Master_Host"] == fqdn(0), "every replica replicates from ordinal 0"
    assert second.sql("SELECT @@gtid_slave_pos", "--skip-column-names") == primary.sql(
        "SELECT @@gtid_binlog_pos", "--skip-column-names")


def test_a_restarted_replica_keeps_its_data_and_resumes(primary, replica_of_replica):
    pod = replica_of_replica
    assert pod.sidecar.stop() == 143, "socat ends on SIGTERM"
    assert pod.server.stop() == 0, "the server ends cleanly on SIGTERM"
    primary.sql("INSERT INTO shop.orders VALUES (4, 'while ordinal 2 was down')")
    again = pod.init(primary.server)
    assert again.returncode == 0, again.stderr
    assert "already initialised" in again.stderr and "receiving a backup" not in again.stderr
    pod.start(primary.server)
    assert "Initializing database files" not in pod.server.output
    wait_until("Ready", lambda: ready(pod).returncode == 0)
    wait_until("caught up", lambda: rows(pod)[-1:] == ["while ordinal 2 was down"])


def test_a_wrong_clone_password_gets_no_backup(replica_of_replica, pods):
    intruder = pods(3, {**SECRET, "clone-password": "not the clone password"})
    result = intruder.init(replica_of_replica.server, KUBESS_INIT_TIMEOUT="20")
    assert result.returncode == 1
    assert f"{fqdn(2)} refused the backup request ('DENIED')" in result.stderr
    assert "refused a backup request: wrong answer to the challenge" in replica_of_replica.sidecar.output
    assert not intruder.data.exists() and list((intruder.volume / "scratch").iterdir()) == []
    for secret in SECRET.values():
        assert secret not in result.stdout + result.stderr + replica_of_replica.sidecar.output


def test_the_stand_in_client_prints_what_the_real_client_prints(primary, replica):
    """mysql_stub.py's client (for the mysql flavour's tests) against the real client of the same lineage."""
    real = replica.sql("SHOW REPLICA STATUS", "--vertical")
    lines = real.splitlines()[1:]
    columns = [line.partition(":")[0].strip() for line in lines]
    values = [line.partition(": ")[2] for line in lines]
    assert mysql_stub.render(columns, [values], names=True, vertical=True) == real
    assert mysql_stub.render(columns, [values], names=False, vertical=True) == replica.sql(
        "SHOW REPLICA STATUS", "--vertical", "--skip-column-names")
    assert primary.sql("SHOW REPLICA STATUS", "--vertical") == "" == mysql_stub.render(columns, [], True, True)
    for names, options in ((True, ()), (False, ("--skip-column-names",))):
        assert mysql_stub.render(["1", "@@global.skip_networking"], [["1", "0"]], names, False) == primary.sql(
            "SELECT 1, @@global.skip_networking", *options)


# --- Backups stored on the backup volume, and a new set restored from one --------------------------------------------
# After every test above: the last one stops the pods of the set backed up.
PREFIX = f"{NAMESPACE}_mysql"


@pytest.fixture(scope="module")
def backup_volume(root, tmp_path_factory) -> Path:
    """The backup volume, as the NFS directory is made for it (the image's uid, 0750); and its mount point."""
    (root / "backup").mkdir()
    path = tmp_path_factory.mktemp("backup-volume")
    os.chown(path, 999, 999)
    path.chmod(0o750)
    return path


def job(root: Path, backup_volume: Path, tmp_path_factory, command: str, env: dict[str, str], *,
        network_of: Container | None = None, binds: dict[str, Path] | None = None) -> subprocess.CompletedProcess:
    """A Job's container of the role: mysql-replication.sh COMMAND with the pods' environment and ``env``, the backup
    volume at /backup, a /tmp of its own; in the pods' network namespace, or none."""
    scratch = tmp_path_factory.mktemp("job-tmp")
    scratch.chmod(0o1777)
    mounts = {"/backup": backup_volume, SCRIPTS_DIR: ROLE / "files", "/tmp": scratch, **(binds or {})}
    argv = ["bash", SCRIPT, command]
    if network_of is None:
        return run(root, argv, user=MYSQL, env=env, binds=mounts, isolated=True)
    enter = ["nsenter", f"--net=/proc/{network_of.pid()}/ns/net"]
    return run(root, argv, user=MYSQL, env=env, binds=mounts, enter=enter, proc=True)


def store(root, backup_volume, tmp_path_factory, primary: Pod, ordinal: int, **env: str) -> subprocess.CompletedProcess:
    """The backup Job (store-backup), from ordinal ``ordinal``'s sidecar."""
    environment = {**pod_environment("mysql-backup-29412345-x7k2p"), "KUBESS_BACKUP_ORDINAL": str(ordinal),
                   "KUBESS_BACKUP_PREFIX": PREFIX, "KUBESS_INIT_TIMEOUT": "20", **env}
    return job(root, backup_volume, tmp_path_factory, "store-backup", environment, network_of=primary.server)


def stored(result: subprocess.CompletedProcess) -> str:
    names = re.findall(r"^stored (\S+)$", result.stdout, re.M)
    assert len(names) == 1, (result.stdout, result.stderr)
    return names[0]


def test_a_backup_is_stored_from_a_healthy_replica_and_the_oldest_beyond_the_kept_are_deleted(
        root, backup_volume, tmp_path_factory, primary, replica_of_replica):
    for name in (f"{PREFIX}-20200101T000000Z.mbstream.gz", f"{PREFIX}-20200102T000000Z.mbstream.gz",
                 "other-mysql-20200101T000000Z.mbstream.gz"):
        (backup_volume / name).write_bytes(b"an older backup\n")
    primary.sql("INSERT INTO shop.orders VALUES (10, 'in the backup')")
    wait_until("replicated", lambda: rows(replica_of_replica)[-1:] == ["in the backup"])
    primary.gtid_at_backup = primary.sql("SELECT @@gtid_binlog_pos", "--skip-column-names").strip()
    result = store(root, backup_volume, tmp_path_factory, primary, 2, KUBESS_BACKUP_KEEP="2")
    assert result.returncode == 0, result.stderr
    name = stored(result)
    assert re.fullmatch(rf"{PREFIX}-\d{{8}}T\d{{6}}Z\.mbstream\.gz", name)
    assert f"storing a backup of {fqdn(2)} into {name}" in result.stderr
    assert "streaming a backup of /var/lib/mysql/data (a backup)" in replica_of_replica.sidecar.output
    assert f"deleted {PREFIX}-20200101T000000Z.mbstream.gz" in result.stdout.splitlines()
    assert sorted(p.name for p in backup_volume.iterdir()) == sorted(
        [f"{PREFIX}-20200102T000000Z.mbstream.gz", name, "other-mysql-20200101T000000Z.mbstream.gz"])
    path = backup_volume / name
    assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (999, 0o640) and path.stat().st_size > 100_000
    primary.sql("INSERT INTO shop.orders VALUES (11, 'after the backup')")
    for secret in SECRET.values():
        assert secret not in result.stdout + result.stderr + replica_of_replica.sidecar.output
    primary.backup = name


def test_a_backup_is_refused_from_a_stopped_replica_and_from_the_primary_unless_forced(
        root, backup_volume, tmp_path_factory, primary, replica, replica_of_replica):
    before = sorted(p.name for p in backup_volume.iterdir())
    replica.sql("STOP SLAVE SQL_THREAD")
    try:
        refused = store(root, backup_volume, tmp_path_factory, primary, 1)
        assert refused.returncode == 1
        assert (f"{fqdn(1)} cannot give a backup now: mysql-1 is Slave_IO_Running=Yes Slave_SQL_Running=No"
                " (a forced backup is taken anyway)") in refused.stderr
        assert "refused a backup: mysql-1 is Slave_IO_Running=Yes Slave_SQL_Running=No" in replica.sidecar.output
        assert sorted(p.name for p in backup_volume.iterdir()) == before
        forced = store(root, backup_volume, tmp_path_factory, primary, 1, KUBESS_BACKUP_FORCE="1", KUBESS_BACKUP_KEEP="9")
        assert forced.returncode == 0, forced.stderr
        assert "a forced backup, although mysql-1 is Slave_IO_Running=Yes" in replica.sidecar.output
        (backup_volume / stored(forced)).unlink()
    finally:
        replica.sql("START SLAVE SQL_THREAD")
    only_writer = store(root, backup_volume, tmp_path_factory, primary, 0)
    assert only_writer.returncode == 1
    assert "mysql-0 is the primary, the only writer: backups are taken from a replica" in only_writer.stderr
    assert sorted(p.name for p in backup_volume.iterdir()) == before


def test_a_stream_cut_short_is_not_stored(root, backup_volume, tmp_path_factory, primary, replica_of_replica):
    """The sidecar's backup tool fails half-way: the stream ends without its last file, and nothing is stored."""
    pod = replica_of_replica
    before = sorted(p.name for p in backup_volume.iterdir())
    # A stand-in of the test's, first on the sidecar's PATH, passes on a part of the real tool's stream and fails.
    cut = pod.binds["/tmp"] / "mariabackup"
    cut.write_text("#!/bin/bash\n/usr/bin/mariabackup \"$@\" | head -c 200000\nexit 1\n")
    cut.chmod(0o755)
    assert pod.sidecar.stop() == 143
    path = "/tmp:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    pod.sidecar = Container(root, ["env", f"PATH={path}", "bash", SCRIPT, "serve-backup"], user=MYSQL, env=pod.env,
                            binds=pod.binds, hostname=pod.hostname, network_of=pod.server)
    pod.containers.append(pod.sidecar)
    pod.sidecar.wait_for_line(r"serving backups of")
    try:
        result = store(root, backup_volume, tmp_path_factory, primary, 2)
        assert result.returncode == 1
        assert f"the backup stream of {fqdn(2)} ended before the backup did" in result.stderr
        assert sorted(p.name for p in backup_volume.iterdir()) == before
    finally:
        cut.unlink()
        assert pod.sidecar.stop() == 143
        pod.sidecar = pod._container("serve-backup", pod.server)
        pod.sidecar.wait_for_line(r"serving backups of")


def restore(root, backup_volume, tmp_path_factory, pod: Pod, name: str, secret: dict[str, str] | None = None):
    """The restore Job (restore), as ordinal 0, on ``pod``'s volume and configuration directory; no network."""
    environment = {**pod_environment(pod.hostname, secret), "KUBESS_RESTORE_FROM": name}
    binds = {path: pod.binds[path] for path in ("/var/lib/mysql", "/etc/mysql/conf.d")}
    return job(root, backup_volume, tmp_path_factory, "restore", environment, binds=binds)


# The new set's Secret: none of the passwords of the set backed up.
NEW_SECRET = {key: f"new {value}" for key, value in SECRET.items()}


def test_a_new_set_restored_from_a_backup_has_its_rows_and_new_replicas_follow_it(
        root, backup_volume, tmp_path_factory, primary, replica, replica_of_replica, pods):
    """The set backed up is stopped (every pod), and a new one made at the same names with a Secret of its own: its
    ordinal 0 from the backup taken from ordinal 2 (a replica), then a replica seeded from it."""
    name = primary.backup
    for pod in (replica_of_replica, replica, primary):
        pod.kill()
    new = pods(0, NEW_SECRET)
    # A backup that is not whole: the restore stops, and the next one starts again.
    broken = f"{PREFIX}-20261204T000000Z.mbstream.gz"
    (backup_volume / broken).write_bytes((backup_volume / name).read_bytes()[:200_000])
    cut = restore(root, backup_volume, tmp_path_factory, new, broken, NEW_SECRET)
    assert cut.returncode == 1 and f"{broken} could not be unpacked" in cut.stderr, cut.stderr
    assert (new.volume / ".kubess-init-started").exists() and not (new.volume / ".kubess-init-done").exists()
    (backup_volume / broken).unlink()

    result = restore(root, backup_volume, tmp_path_factory, new, name, NEW_SECRET)
    assert result.returncode == 0, result.stderr
    assert f"restored {name}: mysql-0 starts from it, its binary log at GTID '{primary.gtid_at_backup}'" in result.stderr
    assert re.search(rf"preparing {re.escape(name)}, taken from mysql-2 \d{{4}}-", result.stderr), result.stderr
    assert (new.volume / ".kubess-init-done").read_text() == "role=primary\nserver_id=100\n"
    assert not (new.volume / "scratch").exists() and not (new.data / "kubess-backup-complete").exists()
    for secret in [*SECRET.values(), *NEW_SECRET.values()]:
        assert secret not in result.stdout + result.stderr + cut.stdout + cut.stderr

    init = new.init(None)
    assert init.returncode == 0 and "data directory already initialised" in init.stderr, init.stderr
    new.start(None)
    wait_until("Ready", lambda: ready(new).returncode == 0)
    assert "Initializing database files" not in new.server.output
    assert rows(new)[-1] == "in the backup" and "after the backup" not in rows(new)
    assert new.sql("SHOW REPLICA STATUS") == ""
    assert new.sql("SELECT @@gtid_binlog_pos, @@read_only", "--skip-column-names").split() == [
        primary.gtid_at_backup, "0"]
    # The new Secret's root password opens it (new.sql), the old one no longer does.
    old_root = new.server.run(["mariadb", "--user=root", f"--socket={SOCKET}", "--execute", "SELECT 1"], user=MYSQL,
                              env={"MYSQL_PWD": SECRET["root-password"]})
    assert old_root.returncode == 1 and "Access denied" in old_root.stderr
    new.sql("INSERT INTO shop.orders VALUES (12, 'after the restore')")
    domain, server, sequence = primary.gtid_at_backup.split("-")
    assert new.sql("SELECT @@gtid_binlog_pos", "--skip-column-names").strip() == f"{domain}-100-{int(sequence) + 1}"

    # Seeded with the new clone password, replicating with the new replication password.
    follower = seeded(pods(1, NEW_SECRET), new)
    assert f"receiving a backup of {fqdn(0)}" in follower.init_result.stderr
    wait_until("replicated", lambda: rows(follower)[-1:] == ["after the restore"])
    new.sql("INSERT INTO shop.orders VALUES (13, 'after the new replica')")
    wait_until("replicated", lambda: rows(follower)[-1:] == ["after the new replica"])

    again = restore(root, backup_volume, tmp_path_factory, new, name, NEW_SECRET)
    assert again.returncode == 1 and "/var/lib/mysql holds data: a restore writes only onto an empty volume" in again.stderr
