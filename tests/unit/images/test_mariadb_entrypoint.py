"""The mariadb-galera image's docker-entrypoint.sh and healthcheck.sh, run in the image's own root.

The entrypoint keeps the start-up contract of the official mariadb:10.11 image, as
tools/images/mariadb-galera/contract.yaml states it. The archive is unpacked once; every container
gets volumes of its own, directories bound onto the root (image_root): the data directory
/var/lib/mysql, the socket directory /run/mysqld, /docker-entrypoint-initdb.d and, for Galera
members, /etc/mysql/conf.d. A container runs the entrypoint with the image's command (mariadbd) as
the image's user 999 unless a test says otherwise, as PID 1 of namespaces of its own, with exactly
the environment given plus what a runtime adds (HOME from /etc/passwd, the image's LANG). Clients
run beside it as 999 and talk to the server over its socket. A server is ready when it prints its
"Version: ... port: N" line with a port (the temporary server of the initialisation has none).
Needs root (unshare, chroot, mount, nsenter).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from image_archive import ImageArchive
from image_build import IMAGES, contract
from image_root import Container, run

ENTRYPOINT = "docker-entrypoint.sh"
SOCKET = "/run/mysqld/mysqld.sock"
# What the runtime adds for the image's user: HOME from /etc/passwd, and the image's Env.
RUNTIME_ENV = {"HOME": "/var/lib/mysql", "LANG": "C.UTF-8"}
READY = r"^Version: '.*' +socket: '/run/mysqld/mysqld\.sock' +port: [1-9]"
MYSQL = "999:999"


@pytest.fixture(scope="module")
def root(built, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("mariadb-entrypoint-rootfs")
    ImageArchive(built["mariadb-galera"][1]).unpack(target)
    # What the kubelet writes into every container (healthcheck.sh's TCP test resolves localhost).
    (target / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n")
    return target


def make_dir(path: Path, owner: int, mode: int) -> Path:
    path.mkdir(parents=True)
    os.chown(path, owner, owner)
    path.chmod(mode)
    return path


class Volumes:
    """A container's volumes: data (999, 0755), socket directory (999, 1777), initialisation files
    (root's, 0755) and, given a configuration, a conf.d holding it as galera.cnf."""

    def __init__(self, base: Path, conf: str | None = None):
        self.data = make_dir(base / "data", 999, 0o755)
        self.run = make_dir(base / "run", 999, 0o1777)
        self.initdb = make_dir(base / "initdb", 0, 0o755)
        self.binds = {"/var/lib/mysql": self.data, "/run/mysqld": self.run, "/docker-entrypoint-initdb.d": self.initdb}
        if conf is not None:
            conf_dir = make_dir(base / "conf.d", 0, 0o755)
            (conf_dir / "galera.cnf").write_text(conf)
            self.binds["/etc/mysql/conf.d"] = conf_dir

    def add(self, name: str, content: str | bytes, mode: int = 0o644) -> Path:
        path = self.initdb / name
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        path.chmod(mode)
        return path


@pytest.fixture
def volumes(tmp_path) -> Volumes:
    return Volumes(tmp_path / "db")


@contextmanager
def container(root: Path, volumes: Volumes, env: dict, args: tuple[str, ...] = ("mariadbd",), *,
              user: str | None = MYSQL, hostname: str = "db-0", network_of: Container | None = None,
              runtime_env: dict | None = None):
    """The entrypoint with args, running until the block ends; ready when the block starts."""
    db = Container(root, [ENTRYPOINT, *args], user=user, env={**(runtime_env or RUNTIME_ENV), **env},
                   binds=volumes.binds, hostname=hostname, network_of=network_of)
    try:
        db.wait_for_line(READY, timeout=180)
        yield db
    finally:
        db.kill()


def once(root: Path, binds: dict, argv: list[str], env: dict | None = None, user: str | None = MYSQL):
    """argv to its end as user (default 999) with the volumes, in namespaces of its own (nothing it
    might start reaches the host's network or outlives it)."""
    return run(root, argv, user=user, env={**RUNTIME_ENV, **(env or {})}, binds=binds, isolated=True)


def client(db: Container, query: str, user: str, password: str | None, database: str | None):
    argv = ["mariadb", f"--user={user}", f"--socket={SOCKET}", "--batch", "--raw"]
    # Column names only for \G, whose rows are "name: value" lines.
    if not query.endswith("\\G"):
        argv.append("--skip-column-names")
    if password is not None:
        argv.append(f"--password={password}")
    if database:
        argv.append(f"--database={database}")
    return db.run([*argv, "--execute", query], user=MYSQL)


def sql(db: Container, query: str, *, user: str = "root", password: str | None = "", database: str | None = None) -> str:
    """query's output, as user with password (None: none given), over the socket, as uid 999."""
    result = client(db, query, user, password, database)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sql_error(db: Container, query: str, *, user: str = "root", password: str | None = "") -> str:
    result = client(db, query, user, password, None)
    assert result.returncode != 0, result.stdout
    return result.stderr


def rows(output: str) -> list[tuple[str, ...]]:
    return [tuple(line.split("\t")) for line in output.splitlines()]


def vertical(output: str) -> dict[str, str]:
    """A \\G result's "Name: value" lines."""
    fields = {}
    for line in output.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def healthcheck(db: Container, *args: str, user: str = MYSQL):
    return db.run(["healthcheck.sh", *args], user=user)


def cmdline(db: Container) -> list[str]:
    return Path(f"/proc/{db.pid()}/cmdline").read_bytes().decode().split("\0")[:-1]


def native_password_hash(password: str) -> str:
    """mysql_native_password's hash, as PASSWORD() computes it."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def owners(path: Path) -> set[int]:
    return {p.lstat().st_uid for p in [path, *path.rglob("*")]}


# --- a new data directory ----------------------------------------------------------------------------------

ROOT_PASSWORD = "it's a \\ secret"
SECRETS = ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD", "MARIADB_PASSWORD", "MYSQL_PASSWORD",
           "MARIADB_REPLICATION_PASSWORD", "MARIADB_ROOT_HOST", "MYSQL_ROOT_HOST")


def test_first_start_as_uid_999_initialises_and_the_settings_work(root, volumes):
    volumes.add("05-schema.sql", "CREATE TABLE runs (what VARCHAR(32) PRIMARY KEY);\nINSERT INTO runs VALUES ('sql');\n")
    volumes.add("10-executed.sh", "#!/bin/bash\nset -e\n"
                "mariadb -uroot -p\"$MARIADB_ROOT_PASSWORD\" \"$MARIADB_DATABASE\" -e \"INSERT INTO runs VALUES ('executed-sh')\"\n",
                mode=0o755)
    volumes.add("20-sourced.sh", "docker_process_sql <<<\"INSERT INTO runs VALUES ('sourced-sh')\"\n"
                "\"${mysql[@]}\" <<<\"INSERT INTO runs VALUES ('mysql-array')\"\n")
    volumes.add("30-data.sql.gz", gzip.compress(b"INSERT INTO runs VALUES ('sql-gz');\n"))
    volumes.add("31-data.sql.xz", lzma.compress(b"INSERT INTO runs VALUES ('sql-xz');\n"))
    volumes.add("32-data.sql", "INSERT INTO runs VALUES ('sql-zst');\n")
    zstd = once(root, volumes.binds, ["zstd", "-q", "--rm", "/docker-entrypoint-initdb.d/32-data.sql"], user=None)
    assert zstd.returncode == 0 and (volumes.initdb / "32-data.sql.zst").is_file(), zstd.stderr
    volumes.add("99-readme.txt", "not an initialisation file\n")
    env = {
        "MARIADB_ROOT_PASSWORD": ROOT_PASSWORD,
        "MARIADB_DATABASE": "shop_db",
        "MARIADB_USER": "shop",
        "MARIADB_PASSWORD": "shop's password",
        "MARIADB_REPLICATION_USER": "repl",
        "MARIADB_REPLICATION_PASSWORD": "repl password",
        "MARIADB_MYSQL_LOCALHOST_USER": "1",
    }
    with container(root, volumes, env) as db:
        log = db.output
        assert "[Entrypoint]: Initializing database files" in log
        assert "[Entrypoint]: MariaDB init process done. Ready for start up." in log
        # Every initialisation file once, .sql files in MARIADB_DATABASE; the others ignored.
        assert sql(db, "SELECT what FROM shop_db.runs ORDER BY what", password=ROOT_PASSWORD).split() == [
            "executed-sh", "mysql-array", "sourced-sh", "sql", "sql-gz", "sql-xz", "sql-zst"]
        assert "running /docker-entrypoint-initdb.d/10-executed.sh" in log
        assert "sourcing /docker-entrypoint-initdb.d/20-sourced.sh" in log
        assert "ignoring /docker-entrypoint-initdb.d/99-readme.txt" in log

        # root: the password, at localhost and at MARIADB_ROOT_HOST's default '%'; no other root.
        assert "Access denied for user 'root'@'localhost'" in sql_error(db, "SELECT 1", password="wrong")
        users = rows(sql(db, "SELECT user, host FROM mysql.user", password=ROOT_PASSWORD))
        assert sorted(users) == sorted([
            ("healthcheck", "127.0.0.1"), ("healthcheck", "::1"), ("healthcheck", "localhost"),
            ("mariadb.sys", "localhost"), ("mysql", "localhost"), ("repl", "%"), ("root", "%"),
            ("root", "localhost"), ("shop", "%")])
        grants = sql(db, "SHOW GRANTS FOR root@'%'", password=ROOT_PASSWORD)
        assert "GRANT ALL PRIVILEGES ON *.* TO `root`@`%`" in grants and "WITH GRANT OPTION" in grants
        assert "GRANT PROXY ON ``@`%` TO `root`@`%` WITH GRANT OPTION" in grants
        # The user: its password, all rights on the database (its _ taken literally).
        assert sql(db, "SELECT DATABASE(), CURRENT_USER()", user="shop", password="shop's password",
                   database="shop_db") == "shop_db\tshop@%\n"
        assert "GRANT ALL PRIVILEGES ON `shop\\_db`.* TO `shop`@`%`" in sql(
            db, "SHOW GRANTS FOR shop@'%'", password=ROOT_PASSWORD)
        assert "GRANT REPLICATION SLAVE ON *.* TO `repl`@`%`" in sql(db, "SHOW GRANTS FOR repl@'%'", password=ROOT_PASSWORD)
        assert sql(db, "SELECT CURRENT_USER()", user="repl", password="repl password") == "repl@%\n"
        # mysql@localhost by unix socket authentication: uid 999 needs no password.
        assert sql(db, "SELECT CURRENT_USER()", user="mysql", password=None) == "mysql@localhost\n"
        # Time zones loaded.
        assert sql(db, "SELECT CONVERT_TZ('2026-07-01 12:00:00', 'UTC', 'Europe/Paris')",
                   password=ROOT_PASSWORD) == "2026-07-01 14:00:00\n"

        # The health-check users' options, for healthcheck.sh.
        cnf = volumes.data / ".my-healthcheck.cnf"
        assert (cnf.stat().st_uid, oct(cnf.stat().st_mode & 0o777)) == (999, "0o600")
        lines = cnf.read_text().splitlines()
        assert lines[:4] == ["[mariadb-client]", "port=3306", f"socket={SOCKET}", "user=healthcheck"]
        assert re.fullmatch(r"password=[^=#;'\"\\$`]{32}", lines[4])
        check = healthcheck(db, "--connect", "--innodb_initialized", "--innodb_buffer_pool_loaded", "--mariadbupgrade")
        assert check.returncode == 0, check.stderr
        check = healthcheck(db, "--connect", "--galera_online")
        assert check.returncode == 1 and "healthcheck galera_online failed" in check.stderr
        # Options that change the client's login: a wrong password fails the test, --no-defaults
        # drops the health-check file (then the unix user's name logs in: mysql@localhost).
        (volumes.run / "wrong.cnf").write_text("[mariadb-client]\nuser=healthcheck\npassword=wrong\n")
        check = healthcheck(db, "--defaults-extra-file=/run/mysqld/wrong.cnf", "--innodb_initialized")
        assert check.returncode == 1 and "Access denied for user 'healthcheck'@'localhost'" in check.stderr
        check = healthcheck(db, "--no-defaults", "--connect", "--innodb_initialized")
        assert check.returncode == 0, check.stderr
        check = healthcheck(db, "--su-mysql", "--connect", "--innodb_initialized", user="0:0")
        assert check.returncode == 0, check.stderr
        check = healthcheck(db, "--nonsense")
        assert check.returncode == 1 and "healthcheck unknown option or test 'nonsense'" in check.stderr

        # The server: the entrypoint's PID 1, now mariadbd as given, as 999, without the secrets.
        assert cmdline(db) == ["mariadbd"]
        status = db.status()
        assert status["Name"] == "mariadbd" and status["Uid"].split() == ["999"] * 4
        environ = db.environ()
        assert not set(SECRETS) & set(environ)
        assert environ["MARIADB_DATABASE"] == environ["MYSQL_DATABASE"] == "shop_db"
        assert environ["MARIADB_USER"] == "shop"
        assert db.stop() == 0
    assert owners(volumes.data) == {999}


def test_second_start_uses_the_data_directory_as_it_is(root, volumes):
    volumes.add("10-starts.sql", "CREATE TABLE starts (n INT);\nINSERT INTO starts VALUES (1);\n")
    first = {"MARIADB_ROOT_PASSWORD": "first", "MARIADB_DATABASE": "app", "MARIADB_INITDB_SKIP_TZINFO": "1"}
    with container(root, volumes, first) as db:
        assert db.stop() == 0
    (volumes.data / ".my-healthcheck.cnf").unlink()

    # No password setting is needed now, and a new database name or root password changes nothing.
    with container(root, volumes, {"MARIADB_DATABASE": "other"}) as db:
        log = db.output
        assert "Initializing database files" not in log and "Temporary server" not in log
        assert sql(db, "SELECT COUNT(*) FROM app.starts", password="first") == "1\n"
        assert sql(db, "SHOW DATABASES LIKE 'other'", password="first") == ""
        # The missing health-check file calls for the upgrade step, which MARIADB_AUTO_UPGRADE gates.
        assert "MariaDB healthcheck configuration file missing, assuming desirable" in log
        assert "required, but skipped due to $MARIADB_AUTO_UPGRADE setting" in log
        assert not (volumes.data / ".my-healthcheck.cnf").exists()
        check = healthcheck(db, "--connect", "--innodb_initialized")
        assert check.returncode == 1 and "Access denied for user 'mysql'@'localhost'" in check.stderr
        # connect alone passes: refused on the socket, it asks over TCP, where a refusal is an answer.
        check = healthcheck(db, "--connect")
        assert check.returncode == 0 and "Access denied for user 'mysql'@'localhost'" in check.stderr
        assert db.stop() == 0

    with container(root, volumes, {"MARIADB_AUTO_UPGRADE": "1", "MARIADB_ROOT_PASSWORD": "second"}) as db:
        log = db.output
        assert "Initializing database files" not in log
        assert "Backing up system database to system_mysql_backup_10.11.19-MariaDB.sql.zst" in log
        assert "Creating healthcheck users" in log
        assert "MariaDB upgrade not required" in log and "Starting mariadb-upgrade" not in log
        dump = once(root, volumes.binds, ["zstd", "-dc", "/var/lib/mysql/system_mysql_backup_10.11.19-MariaDB.sql.zst"])
        assert dump.returncode == 0 and "REPLACE INTO `global_priv`" in dump.stdout
        check = healthcheck(db, "--connect", "--innodb_initialized")
        assert check.returncode == 0, check.stderr
        assert sql(db, "SELECT COUNT(*) FROM app.starts", password="first") == "1\n"
        assert "Access denied" in sql_error(db, "SELECT 1", password="second")
        assert db.stop() == 0


def test_file_variants_mysql_aliases_and_a_replica(root, volumes, tmp_path):
    secrets = make_dir(tmp_path / "secrets", 0, 0o755)
    for name, text in {"root": "from a file\n", "user": "user password\n", "replication": "repl password",
                       "port": "3307\n"}.items():
        (secrets / name).write_text(text)
    volumes.binds["/mnt"] = secrets
    volumes.add("10-env.sh", "#!/bin/sh\nenv | grep -E '^(MARIADB|MYSQL)_' | sort >/var/lib/mysql/initdb-env.txt\n", mode=0o755)
    env = {
        "MARIADB_ROOT_PASSWORD_FILE": "/mnt/root",
        "MARIADB_ROOT_HOST": "localhost",
        "MYSQL_DATABASE": "legacy",
        "MYSQL_USER": "old",
        "MYSQL_PASSWORD_FILE": "/mnt/user",
        "MARIADB_USER_HOST": "localhost",
        "MYSQL_INITDB_SKIP_TZINFO": "yes",
        "MARIADB_MASTER_HOST": "primary.invalid",
        "MARIADB_MASTER_PORT_FILE": "/mnt/port",
        "MARIADB_REPLICATION_USER": "repl",
        "MARIADB_REPLICATION_PASSWORD_FILE": "/mnt/replication",
        "MARIADB_HEALTHCHECK_GRANTS": "REPLICA MONITOR",
    }
    with container(root, volumes, env) as db:
        # What the initialisation files see: values from the files (trailing newline dropped), both
        # names of each setting, no *_FILE.
        seen = dict(line.split("=", 1) for line in (volumes.data / "initdb-env.txt").read_text().splitlines())
        assert seen["MARIADB_ROOT_PASSWORD"] == seen["MYSQL_ROOT_PASSWORD"] == "from a file"
        assert seen["MARIADB_DATABASE"] == seen["MYSQL_DATABASE"] == "legacy"
        assert seen["MARIADB_USER"] == "old" and seen["MARIADB_PASSWORD"] == seen["MYSQL_PASSWORD"] == "user password"
        assert seen["MARIADB_REPLICATION_PASSWORD"] == "repl password" and seen["MARIADB_MASTER_PORT"] == "3307"
        assert seen["MARIADB_INITDB_SKIP_TZINFO"] == seen["MYSQL_INITDB_SKIP_TZINFO"] == "yes"
        assert not [name for name in seen if name.endswith("_FILE")]

        users = rows(sql(db, "SELECT user, host FROM mysql.user WHERE user IN ('root', 'old', 'repl')",
                         password="from a file"))
        assert sorted(users) == [("old", "localhost"), ("root", "localhost")]
        assert sql(db, "SELECT CURRENT_USER(), DATABASE()", user="old", password="user password",
                   database="legacy") == "old@localhost\tlegacy\n"
        assert sql(db, "SELECT COUNT(*) FROM mysql.time_zone_name", password="from a file") == "0\n"
        # A replica of MARIADB_MASTER_HOST, its threads started by the real server only.
        replica = vertical(sql(db, "SHOW REPLICA STATUS\\G", password="from a file"))
        assert (replica["Master_Host"], replica["Master_User"], replica["Master_Port"], replica["Connect_Retry"]) == (
            "primary.invalid", "repl", "3307", "10")
        assert replica["Slave_SQL_Running"] == "Yes"
        # healthcheck.sh's replication test, with the health-check users' REPLICA MONITOR.
        check = healthcheck(db, "--replication_sql", "--replication")
        assert check.returncode == 0, check.stderr
        check = healthcheck(db, "--replication_seconds_behind_master=0", "--replication")
        assert check.returncode == 1 and "Forcing --replication_io=1" in check.stderr
        assert "healthcheck replication failed" in check.stderr
        assert db.stop() == 0


def test_password_hashes_apply_after_the_initialisation_files(root, volumes):
    volumes.add("10-who.sql", "CREATE TABLE who AS SELECT CURRENT_USER() AS user;\n")
    env = {
        "MARIADB_ROOT_PASSWORD_HASH": native_password_hash("root by hash"),
        "MARIADB_DATABASE": "app",
        "MARIADB_USER": "user",
        "MARIADB_PASSWORD_HASH": native_password_hash("user by hash"),
        "MARIADB_INITDB_SKIP_TZINFO": "1",
    }
    with container(root, volumes, env) as db:
        # The files ran as root@localhost, whose password was still empty then.
        assert sql(db, "SELECT user FROM app.who", password="root by hash") == "root@localhost\n"
        assert "Access denied" in sql_error(db, "SELECT 1", password="")
        assert sql(db, "SELECT CURRENT_USER()", user="user", password="user by hash") == "user@%\n"
        assert sql(db, "SELECT authentication_string FROM mysql.user WHERE user = 'root' AND host = '%'",
                   password="root by hash") == native_password_hash("root by hash") + "\n"
        assert db.stop() == 0


def test_started_as_root_it_hands_the_volumes_to_mysql_and_runs_as_mysql(root, volumes):
    os.chown(volumes.data, 0, 0)
    os.chown(volumes.run, 0, 0)
    volumes.run.chmod(0o755)
    env = {"MARIADB_RANDOM_ROOT_PASSWORD": "yes", "MARIADB_INITDB_SKIP_TZINFO": "1"}
    # As root, the runtime's HOME is root's.
    with container(root, volumes, env, user=None, runtime_env={"HOME": "/root", "LANG": "C.UTF-8"}) as db:
        log = db.output
        assert "Switching to dedicated user 'mysql'" in log
        password = re.search(r"GENERATED ROOT PASSWORD: (.*)$", log, re.MULTILINE).group(1)
        assert len(password) == 32 and not set(password) & set("'\\\"$` ")
        assert sql(db, "SELECT CURRENT_USER()", password=password) == "root@localhost\n"
        assert db.status()["Uid"].split() == ["999"] * 4
        assert db.environ()["HOME"] == "/var/lib/mysql"
        assert owners(volumes.data) == {999}
        assert volumes.run.stat().st_uid == 999
        assert db.stop() == 0


@pytest.mark.parametrize("env, message", [
    ({}, "Database is uninitialized and password option is not specified\n\tYou need to specify one of"
         " MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and"
         " MARIADB_RANDOM_ROOT_PASSWORD"),
    ({"MARIADB_DATABASE": "app", "MARIADB_USER": "app", "MARIADB_PASSWORD": "secret"},
     "Database is uninitialized and password option is not specified"),
    ({"MARIADB_ROOT_PASSWORD": "a", "MARIADB_ROOT_PASSWORD_FILE": "/etc/passwd"},
     "Both MARIADB_ROOT_PASSWORD and MARIADB_ROOT_PASSWORD_FILE are set (but are exclusive)"),
    ({"MARIADB_ROOT_PASSWORD": "a", "MARIADB_ROOT_PASSWORD_HASH": native_password_hash("b")},
     "Cannot specify MARIADB_ROOT_PASSWORD_HASH and another MARIADB_ROOT_PASSWORD* option."),
    ({"MARIADB_ROOT_PASSWORD": "a", "MARIADB_REPLICATION_USER": "repl"},
     "MARIADB_REPLICATION_PASSWORD or MARIADB_REPLICATION_PASSWORD_HASH not found"),
    ({"MARIADB_ROOT_PASSWORD": "a", "MARIADB_MASTER_HOST": "primary"},
     "For a replica, MARIADB_REPLICATION_USER and MARIADB_REPLICATION_PASSWORD are mandatory."),
], ids=["nothing", "no-root-setting", "value-and-file", "hash-and-password", "primary-without-password",
        "replica-without-user"])
def test_a_new_data_directory_refuses_missing_or_contradictory_settings(root, volumes, env, message):
    result = once(root, volumes.binds, [ENTRYPOINT, "mariadbd"], env)
    assert result.returncode == 1
    assert "[ERROR] [Entrypoint]: " + message in result.stderr
    assert list(volumes.data.iterdir()) == []


def test_as_uid_999_a_data_directory_it_cannot_write_stops_the_start_with_the_reason(root, volumes):
    os.chown(volumes.data, 0, 0)
    result = once(root, volumes.binds, [ENTRYPOINT, "mariadbd"], {"MARIADB_ROOT_PASSWORD": "a"})
    assert result.returncode == 1
    assert "uid 999 cannot write to the data directory /var/lib/mysql (owner 0, group 0, mode 755)" in result.stderr
    assert list(volumes.data.iterdir()) == []


def test_options_help_and_other_commands_skip_the_set_up(root, volumes):
    # A first argument starting with '-' is an option of mariadbd.
    result = once(root, volumes.binds, [ENTRYPOINT, "--version"])
    assert result.returncode == 0, result.stderr
    assert re.match(r"mariadbd +Ver 10\.11\.19-MariaDB", result.stdout)
    result = once(root, volumes.binds, [ENTRYPOINT, "mariadbd", "--verbose", "--help"])
    assert result.returncode == 0 and "datadir" in result.stdout
    result = once(root, volumes.binds, [ENTRYPOINT, "bash", "-c", 'echo "$0 $1 $(id -u)"', "a", "b"])
    assert result.returncode == 0 and result.stdout == "a b 999\n"
    assert "[Entrypoint]" not in result.stdout + result.stderr
    assert list(volumes.data.iterdir()) == []
    # A configuration the server rejects stops the start with the server's own words.
    result = once(root, volumes.binds, [ENTRYPOINT, "mariadbd", "--no-such-option"], {"MARIADB_ROOT_PASSWORD": "a"})
    assert result.returncode == 1
    assert "mariadbd failed while attempting to check config" in result.stderr
    assert "unknown option '--no-such-option'" in result.stderr
    assert list(volumes.data.iterdir()) == []


def test_sourced_it_only_defines_its_functions(root, volumes):
    script = (". docker-entrypoint.sh && declare -F docker_process_sql docker_process_init_files file_env mysql_note"
              " && echo sourced")
    result = once(root, volumes.binds, ["bash", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["docker_process_sql", "docker_process_init_files", "file_env", "mysql_note",
                                     "sourced"]
    assert list(volumes.data.iterdir()) == []


def test_a_backup_in_the_initialisation_files_makes_the_data_directory_without_settings(root, tmp_path):
    source = Volumes(tmp_path / "source")
    backups = make_dir(tmp_path / "backups", 999, 0o755)
    source.binds["/srv"] = backups
    with container(root, source, {"MARIADB_ROOT_PASSWORD": "kept", "MARIADB_INITDB_SKIP_TZINFO": "1"}) as db:
        sql(db, "CREATE DATABASE app; CREATE TABLE app.t (n INT) ENGINE=InnoDB; INSERT INTO app.t VALUES (42)",
            password="kept")
        for step in (["--backup", "--user=root", "--password=kept", f"--socket={SOCKET}"], ["--prepare"]):
            result = db.run(["mariadb-backup", *step, "--target-dir=/srv/full"], user=MYSQL)
            assert result.returncode == 0, result.stderr[-3000:]
        assert db.stop() == 0
    target = Volumes(tmp_path / "target")
    with tarfile.open(target.initdb / "full.tar.gz", "w:gz") as archive:
        archive.add(backups / "full", arcname=".")

    with container(root, target, {}) as db:
        log = db.output
        assert "Restoring /docker-entrypoint-initdb.d/full.tar.gz" in log
        assert "Initializing database files" not in log and "password option is not specified" not in log
        assert sql(db, "SELECT n FROM app.t", password="kept") == "42\n"
        # The backup's own settings, kept for the server: mysql's HOME is the data directory.
        assert "[mysqld]" in (target.data / ".my.cnf").read_text()
        assert not (target.data / ".init").exists() and not (target.data / ".restore").exists()
        assert db.stop() == 0


# --- Galera ------------------------------------------------------------------------------------------------


def galera_cnf(name: str, address: str) -> str:
    """A member of a two-member cluster on the loopback addresses 127.0.0.1 and 127.0.0.2."""
    return f"""\
[galera]
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = kubess-entrypoint-test
wsrep_cluster_address = gcomm://127.0.0.1,127.0.0.2
wsrep_node_name = {name}
wsrep_node_address = {address}
wsrep_provider_options = "gmcast.listen_addr=tcp://{address}:4567"
wsrep_sst_method = mariabackup
wsrep_sst_auth = root:donor
wsrep_sst_receive_address = {address}:4444
binlog_format = ROW
innodb_autoinc_lock_mode = 2
[mariadbd]
bind-address = {address}
innodb_buffer_pool_size = 32M
"""


def galera_status(db: Container, password: str) -> dict[str, str]:
    query = ("SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN"
             " ('WSREP_CLUSTER_SIZE', 'WSREP_LOCAL_STATE_COMMENT', 'WSREP_CLUSTER_STATUS')")
    return dict(rows(sql(db, query, password=password)))


def test_galera_members_initialise_without_wsrep_and_a_joiner_takes_the_donors_state(root, tmp_path):
    a = Volumes(tmp_path / "a", galera_cnf("a", "127.0.0.1"))
    b = Volumes(tmp_path / "b", galera_cnf("b", "127.0.0.2"))
    a.add("10-items.sql", "CREATE TABLE items (n INT PRIMARY KEY) ENGINE=InnoDB;\nINSERT INTO items VALUES (1);\n")
    b.add("10-own.sql", "CREATE TABLE own (n INT PRIMARY KEY) ENGINE=InnoDB;\n")
    env_a = {"MARIADB_ROOT_PASSWORD": "donor", "MARIADB_DATABASE": "only_a", "MARIADB_MYSQL_LOCALHOST_USER": "1",
             "MARIADB_INITDB_SKIP_TZINFO": "1"}
    # --wsrep-new-cluster is the caller's: the entrypoint passes it through and adds nothing.
    with container(root, a, env_a, ("mariadbd", "--wsrep-new-cluster"), hostname="a") as first:
        first.wait_for_line(r"WSREP: Synchronized with group")
        initialisation, done, serving = first.output.partition("MariaDB init process done")
        assert done
        # The initialisation's temporary server ran with wsrep_on=OFF: the provider started only after it.
        assert "WSREP: Start replication" not in initialisation and "WSREP: Start replication" in serving
        assert cmdline(first) == ["mariadbd", "--wsrep-new-cluster"]
        assert galera_status(first, "donor") == {
            "WSREP_CLUSTER_SIZE": "1", "WSREP_LOCAL_STATE_COMMENT": "Synced", "WSREP_CLUSTER_STATUS": "Primary"}
        check = healthcheck(first, "--connect", "--innodb_initialized", "--galera_online", "--galera_ready")
        assert check.returncode == 0, check.stderr

        # A joiner with an empty data directory is a new data directory like any other: it needs a
        # root password setting, and stops before any Galera activity without one.
        result = once(root, b.binds, [ENTRYPOINT, "mariadbd"])
        assert result.returncode == 1 and "password option is not specified" in result.stderr
        assert list(b.data.iterdir()) == []

        # With one, it is initialised from its own settings first, then the state transfer replaces
        # its data with the donor's.
        env_b = {"MYSQL_ALLOW_EMPTY_PASSWORD": "yes", "MARIADB_DATABASE": "only_b", "MARIADB_INITDB_SKIP_TZINFO": "1"}
        with container(root, b, env_b, hostname="b", network_of=first) as second:
            second.wait_for_line(r"WSREP: Synchronized with group")
            initialisation, done, serving = second.output.partition("MariaDB init process done")
            assert "Creating database only_b" in initialisation and "running /docker-entrypoint-initdb.d/10-own.sql" in initialisation
            assert "WSREP: Start replication" not in initialisation
            assert "WSREP: SST succeeded" in serving
            # Its root is the donor's now, and so are the databases: only_b is gone.
            assert "Access denied" in sql_error(second, "SELECT 1", password="")
            assert sql(second, "SELECT n FROM only_a.items", password="donor") == "1\n"
            assert "only_b" not in sql(second, "SHOW DATABASES", password="donor").split()
            # only_b never reached the cluster: the joiner's temporary server had no Galera.
            assert "only_b" not in sql(first, "SHOW DATABASES", password="donor").split()
            for member in (first, second):
                assert galera_status(member, "donor")["WSREP_CLUSTER_SIZE"] == "2"
            sql(second, "INSERT INTO only_a.items VALUES (2)", password="donor")
            assert sql(first, "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM only_a.items",
                       password="donor") == "2\n"
            # The transfer took the joiner's own health-check file and mysql_upgrade_info with its
            # data; the donor's users came with it, mysql@localhost (unix socket) among them, so
            # healthcheck.sh as uid 999 logs in as mysql.
            assert not (b.data / ".my-healthcheck.cnf").exists()
            assert not (b.data / "mysql_upgrade_info").exists()
            check = healthcheck(second, "--connect", "--innodb_initialized", "--galera_online")
            assert check.returncode == 0, check.stderr
            assert second.stop() == 0

        # Started again, the joiner keeps its data directory (no initialisation) and rejoins.
        with container(root, b, {}, hostname="b", network_of=first) as second:
            second.wait_for_line(r"WSREP: Synchronized with group")
            log = second.output
            assert "Initializing database files" not in log
            assert "MariaDB upgrade information missing, assuming required" in log
            assert sql(second, "SELECT COUNT(*) FROM only_a.items", password="donor") == "2\n"
            assert second.stop() == 0
        assert first.stop() == 0


# --- the contract ------------------------------------------------------------------------------------------


def test_the_contract_names_every_setting_the_entrypoint_reads():
    listed = set(contract("mariadb-galera")["reads_env"]["/usr/local/bin/docker-entrypoint.sh"])
    script = (IMAGES / "mariadb-galera" / "docker-entrypoint.sh").read_text()
    mentioned = set(re.findall(r"\b(?:MARIADB|MYSQL)_[A-Z_]+\b", script))
    # The client's password variable is set for the client, not read; *_FILE variants are listed as _FILE.
    mentioned = {name.removesuffix("_FILE") for name in mentioned} - {"MYSQL_PWD"}
    assert mentioned == listed - {"_FILE"}
