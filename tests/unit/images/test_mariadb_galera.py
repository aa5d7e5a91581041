"""The mariadb-galera image runs a one-member Galera cluster as its user 999, with its own files.

The archive is unpacked and the programs run in it with chroot(8), in mount, network and UTS
namespaces of their own (unshare(1)): mariadb-install-db initialises the empty /var/lib/mysql, mariadbd starts
with the Galera provider from a file in /etc/mysql/conf.d (where the roles mount theirs, read after
the packaged configuration), bootstraps a new cluster, answers on /run/mysqld/mysqld.sock and
reports itself Synced; then it shuts down. Needs root (unshare, chroot, mount).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from image_archive import ImageArchive

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

GALERA_CNF = """\
[galera]
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = kubess-image-test
wsrep_cluster_address = gcomm://
wsrep_node_address = 127.0.0.1
wsrep_sst_method = mariabackup
binlog_format = ROW
innodb_autoinc_lock_mode = 2
[mariadbd]
innodb_buffer_pool_size = 32M
"""

QUERY = (
    "SELECT JSON_OBJECTAGG(VARIABLE_NAME, VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS"
    " WHERE VARIABLE_NAME IN ('WSREP_READY', 'WSREP_LOCAL_STATE_COMMENT', 'WSREP_CLUSTER_SIZE',"
    " 'WSREP_PROVIDER_NAME', 'WSREP_CLUSTER_STATUS')"
)


@pytest.fixture(scope="module")
def root(built, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("mariadb-galera-rootfs")
    ImageArchive(built["mariadb-galera"][1]).unpack(target)
    return target


def test_galera_cluster_of_one_starts_as_uid_999(root):
    (root / "etc" / "mysql" / "conf.d" / "galera.cnf").write_text(GALERA_CNF)
    # What the runtime gives every container: a host name (its own UTS namespace) and /etc/hosts.
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tgalera-0\n")
    r = shlex.quote(str(root))

    def as_user(uid: str, *argv: str) -> str:
        return shlex.join(["chroot", f"--userspec={uid}", str(root), "/usr/bin/env", "-i", f"PATH={PATH}",
                           "HOME=/var/lib/mysql", *argv])

    socket = "/run/mysqld/mysqld.sock"
    client = ["mariadb", "--user=root", f"--socket={socket}", "--batch", "--skip-column-names"]
    script = f"""
set -e
hostname galera-0
ip link set lo up
mount --rbind /dev {r}/dev
mount -t proc proc {r}/proc
{as_user("999:999", "mariadb-install-db", "--auth-root-authentication-method=socket", "--skip-test-db")} >{r}/tmp/install.log 2>&1
{as_user("999:999", "mariadbd")} >{r}/tmp/mariadbd.log 2>&1 &
server=$!
set +e
# Bounded wait: mariadb-admin retries the connection itself, at most 60 times.
{as_user("0:0", "mariadb-admin", "--user=root", f"--socket={socket}", "--wait=60", "--connect-timeout=2", "ping")} >/dev/null
{as_user("0:0", *client, "--execute", QUERY)}
status=$?
{as_user("0:0", "mariadb-admin", "--user=root", f"--socket={socket}", "shutdown")}
wait $server
echo "mariadbd exit $?" >&2
exit $status
"""
    result = subprocess.run(["unshare", "--mount", "--net", "--uts", "--propagation", "private", "--fork", "sh", "-c", script],
                            capture_output=True, text=True, timeout=600, check=False)
    logs = "".join((root / "tmp" / name).read_text() for name in ("install.log", "mariadbd.log")
                   if (root / "tmp" / name).exists())
    assert result.returncode == 0, result.stderr + logs[-4000:]
    status = json.loads(result.stdout.strip())
    assert status == {
        "WSREP_READY": "ON",
        "WSREP_LOCAL_STATE_COMMENT": "Synced",
        "WSREP_CLUSTER_SIZE": "1",
        "WSREP_CLUSTER_STATUS": "Primary",
        "WSREP_PROVIDER_NAME": "Galera",
    }
    assert "mariadbd exit 0" in result.stderr
    # The server ran as mysql (999) and wrote its data as that user.
    data = root / "var" / "lib" / "mysql"
    assert (data / "mysql").is_dir() and (data / "grastate.dat").is_file()
    assert {p.stat().st_uid for p in data.iterdir()} == {999}
    assert "safe_to_bootstrap: 1" in (data / "grastate.dat").read_text()
