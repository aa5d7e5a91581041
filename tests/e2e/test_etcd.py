"""etcd in real containers: three started members over the headless Service's names, data written as uid 65532 on
the root-squashed NFS export, a key written through one member read through another, and a deleted member that
comes back with its data."""

from __future__ import annotations

import json
import uuid

from conftest import NFS_ROOT, json_of

MEMBERS = ["etcd-0", "etcd-1", "etcd-2"]


def endpoint(member: str, stack) -> str:
    # TLS (etcd_tls, on by default): etcdctl in the member pods takes the CA, certificate and key from the pod's
    # ETCDCTL_CACERT/ETCDCTL_CERT/ETCDCTL_KEY.
    return f"https://{member}.etcd.{stack.namespace}.svc.cluster.local:2379"


def test_three_started_members(stack):
    members = json_of(stack.etcdctl("etcd-0", "member", "list", "-w", "json"))["members"]
    assert sorted(m["name"] for m in members) == MEMBERS
    assert not any(m.get("isLearner") for m in members)
    for member in members:
        assert member["peerURLs"] == [f"https://{member['name']}.etcd.{stack.namespace}.svc.cluster.local:2380"]


def test_every_endpoint_healthy(stack):
    health = json.loads(stack.etcdctl("etcd-1", "endpoint", "health", "-w", "json",
                                      endpoints=[endpoint(m, stack) for m in MEMBERS]).stdout)
    assert sorted(h["endpoint"] for h in health if h["health"]) == sorted(endpoint(m, stack) for m in MEMBERS)


def test_key_written_through_member_0_is_read_through_member_2(stack):
    key, value = f"/e2e/{uuid.uuid4().hex}", uuid.uuid4().hex
    stack.etcdctl("etcd-0", "put", key, value, endpoints=[endpoint("etcd-0", stack)])
    got = stack.etcdctl("etcd-2", "get", key, "--print-value-only", endpoints=[endpoint("etcd-2", stack)])
    assert got.stdout.strip() == value


def test_data_belongs_to_the_members_uid_on_the_export(stack):
    """The defect this fixes: as root (the image's default) on a root-squashed export, etcd could not create its data
    directory. The members run as 65532, which owns their directories."""
    for n, member in enumerate(MEMBERS):
        spec = stack.get("pod", member)["spec"]
        assert spec["securityContext"]["runAsUser"] == 65532
        data = NFS_ROOT / f"data-etcd-{n}" / "data"
        assert data.is_dir(), f"{member} wrote no data directory on the export"
        assert (data.stat().st_uid, data.stat().st_gid) == (65532, 65532)
        assert (data / "member" / "wal").is_dir()


def test_a_client_without_a_certificate_is_refused(stack):
    """etcd_tls (on by default) requires a client certificate of the cluster's CA: a TLS client with none, from
    another pod (openssl in a Galera member, TLS 1.2 so that the refusal comes in the handshake), is refused by every
    member, and a client speaking plain HTTP to the client port gets no health answer."""
    for member in MEMBERS:
        host = f"{member}.etcd.{stack.namespace}.svc.cluster.local"
        done = stack.exec("pxc-0", "openssl", "s_client", "-tls1_2", "-connect", f"{host}:2379", "-servername", host,
                          container="pxc", stdin="", check=False, timeout=60)
        assert done.returncode != 0, (member, done.stdout[-400:])
        # The member showed its certificate, then ended the handshake the client could not complete without one of
        # its own (Go answers TLS 1.2 with alert 40, handshake failure; etcdctl with the pod's certificate is served).
        assert f"CN = {member}" in done.stderr and "alert handshake failure" in done.stderr, (member, done.stderr[-400:])
    plain = stack.exec("pxc-0", "bash", "-c",
                       f"exec 3<>/dev/tcp/etcd-0.etcd.{stack.namespace}.svc.cluster.local/2379; "
                       "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3; timeout 5 cat <&3",
                       container="pxc", check=False, timeout=60)
    assert '"health"' not in plain.stdout, plain.stdout[-400:]
