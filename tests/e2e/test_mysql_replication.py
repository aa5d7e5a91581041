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


def test_every_replica_replicates_from_the_primary_and_refuses_the_applications_writes(stack):
    password = stack.secret(SECRET, "app-password")
    options = f"[client]\nuser=app\npassword={password}\n"
    for n in range(1, replicas(stack)):
        member = f"mysql-{n}"
        status = stack.exec(member, "mariadb", "--defaults-extra-file=/dev/stdin", "-e", "SHOW REPLICA STATUS\\G",
                            container="mysql",
                            stdin=f"[client]\nuser=root\npassword={stack.secret(SECRET, 'root-password')}\n").stdout
        assert "Master_Host: mysql-0.mysql" in status, (member, status[:800])
        assert "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status, (member, status[:800])
        refused = stack.exec(member, "mariadb", "--defaults-extra-file=/dev/stdin", "-e",
                             "CREATE TABLE IF NOT EXISTS app.refused (n INT PRIMARY KEY)", container="mysql",
                             stdin=options, check=False)
        assert refused.returncode != 0 and "ERROR 1290" in refused.stderr, (member, refused.stderr)
