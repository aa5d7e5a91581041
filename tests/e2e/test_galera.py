"""Galera in real containers (the MariaDB flavour of the pxc role): three Synced members of one cluster, and a row
written on ordinal 0 read on ordinal 2."""

from __future__ import annotations

import uuid

MEMBERS = ["pxc-0", "pxc-1", "pxc-2"]
SECRET = "pxc-secrets"
# Reads wait until the member has applied every write the cluster committed before them (causal reads).
CAUSAL = "SET SESSION wsrep_sync_wait = 1; "


def root_password(stack) -> str:
    return stack.secret(SECRET, "root-password")


def sql(stack, member: str, statement: str) -> list[list[str]]:
    return stack.sql(member, statement, password=root_password(stack), container="pxc")


def wsrep_status(stack, member: str) -> dict[str, str]:
    return dict(sql(stack, member, "SHOW GLOBAL STATUS LIKE 'wsrep\\_%'"))


def ensure_table(stack, table: str) -> None:
    sql(stack, "pxc-0", "CREATE DATABASE IF NOT EXISTS kubess_e2e; "
                        f"CREATE TABLE IF NOT EXISTS kubess_e2e.{table} "
                        "(id BIGINT AUTO_INCREMENT PRIMARY KEY, marker VARCHAR(64) NOT NULL)")


def test_three_synced_members_of_one_cluster(stack):
    states = {member: wsrep_status(stack, member) for member in MEMBERS}
    for member, status in states.items():
        assert status["wsrep_cluster_size"] == "3", (member, status["wsrep_cluster_size"])
        assert status["wsrep_local_state_comment"] == "Synced", (member, status["wsrep_local_state_comment"])
        assert status["wsrep_ready"] == "ON", member
        assert status["wsrep_cluster_status"] == "Primary", member
    assert len({status["wsrep_cluster_state_uuid"] for status in states.values()}) == 1


def test_a_row_written_on_ordinal_0_is_read_on_ordinal_2(stack):
    ensure_table(stack, "rows")
    marker = uuid.uuid4().hex
    sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{marker}')")
    got = sql(stack, "pxc-2", f"{CAUSAL}SELECT marker FROM kubess_e2e.rows WHERE marker = '{marker}'")
    assert got == [[marker]]


def test_members_run_as_the_images_user_on_the_export(stack):
    """The directories of the members on the root-squashed export belong to the image's mysql user (999)."""
    for member in MEMBERS:
        spec = stack.get("pod", member)["spec"]
        assert spec["securityContext"]["runAsUser"] == 999, member
        uid = stack.exec(member, "stat", "-c", "%u:%g", "/var/lib/mysql/grastate.dat", container="pxc").stdout.strip()
        assert uid == "999:999", (member, uid)
