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


def openssl_to(stack, member: str, target: str, port: int, *extra: str):
    """A TLS handshake from ``member`` to ``target``'s ``port``, checked against the cluster's CA and the target's
    stable name (openssl s_client in the member's container, with the member's own certificate unless told)."""
    host = f"{target}.pxc.{stack.namespace}.svc.cluster.local"
    argv = ["openssl", "s_client", "-connect", f"{host}:{port}", "-servername", host,
            "-CAfile", "/etc/mysql/tls/ca.pem", "-verify_return_error", "-verify_hostname", host, *extra]
    return stack.exec(member, *argv, container="pxc", stdin="", check=False, timeout=60)


MEMBER_CERT = ["-cert", "/etc/mysql/tls/server-cert.pem", "-key", "/etc/mysql/tls/server-key.pem"]


def test_galera_traffic_is_encrypted_with_the_clusters_ca(stack):
    """pxc_tls (on by default): the provider of every member runs with socket.ssl, and the Galera port of each member
    answers a TLS handshake with a certificate the role's CA signed for that member's stable name."""
    for member in MEMBERS:
        options = dict(sql(stack, member, "SHOW GLOBAL VARIABLES LIKE 'wsrep\\_provider\\_options'"))
        assert "socket.ssl = YES" in options["wsrep_provider_options"], member
    for member, target in zip(MEMBERS, MEMBERS[1:] + MEMBERS[:1]):
        done = openssl_to(stack, member, target, 4567, *MEMBER_CERT)
        assert done.returncode == 0 and "Verify return code: 0 (ok)" in done.stdout, (member, target, done.stderr[-600:])


def test_the_client_port_speaks_tls_too(stack):
    """The MariaDB client port offers TLS with the same certificate: WordPress's user, connecting from another
    member over TLS with the CA and the server's name checked, is answered over TLS."""
    user, password = stack.secret(SECRET, "wordpress-user"), stack.secret(SECRET, "wordpress-password")
    options = f"[client]\nuser={user}\npassword={password}\n"
    host = f"pxc-1.pxc.{stack.namespace}.svc.cluster.local"
    argv = ["mariadb", "--defaults-extra-file=/dev/stdin", "--batch", "--skip-column-names", "-h", host,
            "--ssl", "--ssl-ca=/etc/mysql/tls/ca.pem", "--ssl-verify-server-cert",
            "-e", "SHOW STATUS LIKE 'Ssl\\_version'"]
    done = stack.exec("pxc-0", *argv, container="pxc", stdin=options, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\t")[1].strip().startswith("TLS"), done.stdout
