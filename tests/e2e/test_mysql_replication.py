"""MySQL replication in real containers (the MariaDB flavour): each replica was seeded from the ordinal before it,
then replicates from ordinal 0; a row written on the primary is read on the last replica."""

from __future__ import annotations

import uuid

SECRET = "mysql-credentials"


def replicas(stack) -> int:
    return stack.get("statefulset", "mysql")["spec"]["replicas"]


def sql(stack, member: str, statement: str) -> list[list[str]]:
    return stack.sql(member, statement, password=stack.secret(SECRET, "root-password"), container="mysql")


def test_each_replica_was_seeded_from_the_ordinal_before_it(stack):
    count = replicas(stack)
    assert count >= 2
    for n in range(1, count):
        logs = stack.kubectl("logs", "-n", stack.namespace, f"mysql-{n}", "--all-containers=true").stdout
        source = f"mysql-{n - 1}.mysql"
        assert f"receiving a backup of {source}" in logs, f"mysql-{n} does not say it was seeded from {source}"


def test_a_row_written_on_the_primary_is_read_on_the_last_replica(stack):
    last = f"mysql-{replicas(stack) - 1}"
    marker = uuid.uuid4().hex
    sql(stack, "mysql-0", "CREATE DATABASE IF NOT EXISTS kubess_e2e; "
                          "CREATE TABLE IF NOT EXISTS kubess_e2e.rows (marker VARCHAR(64) PRIMARY KEY); "
                          f"INSERT INTO kubess_e2e.rows VALUES ('{marker}')")
    stack.wait_for(lambda: sql(stack, last, f"SELECT marker FROM kubess_e2e.rows WHERE marker = '{marker}'")
                   == [[marker]], timeout=60, what=f"the row on {last}")
    status = stack.exec(last, "mariadb", "--defaults-extra-file=/dev/stdin", "-e", "SHOW REPLICA STATUS\\G",
                        container="mysql",
                        stdin=f"[client]\nuser=root\npassword={stack.secret(SECRET, 'root-password')}\n").stdout
    assert "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status
    assert "Master_Host: mysql-0.mysql" in status


def test_replicas_refuse_writes(stack):
    last = f"mysql-{replicas(stack) - 1}"
    assert sql(stack, last, "SELECT @@global.read_only") == [["1"]]
