"""Three real etcd members with the role's TLS environment, on loopback.

The role's container environment (vars/main.yml, etcd__container_env) is taken as the StatefulSet gives it to pods
etcd-0..2 (downward API pod name, $(VAR) expansion), then moved onto this machine: every member on 127.0.0.1 with
ports of its own above 30000 (its stable DNS names become 127.0.0.1 and those ports), the mounted Secret and the data
volume become directories of the test. The certificates carry the names and usages the role gives them
(etcd__tls_certs), issued by a CA made here with cryptography. Members are started as OrderedReady would start them:
each once the one before answers its readiness probe on the plain HTTP metrics listener.

Shown: the members form one cluster over TLS (member list, endpoint health on all three, a key put through member 0
read through member 2), with the client certificate and with etcdctl configured by the pod's own ETCDCTL_ variables;
a client without a certificate is refused in the TLS handshake; plain HTTP to the client port gets no answer from
etcd; the probes' metrics listener stays plain HTTP. Every process started is stopped by PID in the fixture's
teardown.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcd_role_data import ROLE, members_configmap, pod_env, role_vars

NS = "db"
DEADLINE_S = 60.0
VERSIONS = ROLE.parents[1] / "tools" / "localcluster" / "versions.env"


def _etcd_version() -> str:
    for line in VERSIONS.read_text(encoding="utf-8").splitlines():
        if line.startswith("ETCD_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"no ETCD_VERSION in {VERSIONS}")


CACHE = Path(os.environ.get("KUBESS_CACHE_DIR", Path.home() / ".cache" / "kubess-stateful"))
ETCD = CACHE / "bin" / f"etcd-{_etcd_version()}" / "etcd"
ETCDCTL = CACHE / "bin" / f"etcd-tools-{_etcd_version()}" / "etcdctl"


@pytest.fixture(autouse=True)
def etcd_binaries():
    """The etcd and etcdctl this suite runs: `make unit` builds them first (tools/localcluster/build.sh
    control-plane); a run without them fails here, saying so, rather than passing by skipping."""
    missing = [str(p) for p in (ETCD, ETCDCTL) if not p.is_file()]
    assert not missing, f"the etcd binaries are not built: {missing}; run tools/localcluster/build.sh control-plane"


# --- certificates, with the role's names and usages --------------------------------------------------------------
def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(spec: dict, ca_cert, ca_key):
    now = datetime.now(timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(n) for n in spec["dns"]] + [x509.IPAddress(ipaddress.ip_address(i)) for i in spec["ips"]]
    usages = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec["cn"])]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usages[u] for u in spec["usages"]]), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), _pem_key(key)


def write_certificates(certs: list[dict], directory: Path) -> dict[str, Path]:
    """The members' Secret as the pods mount it (ca.crt, <pod>.crt, <pod>.key) and the client certificate."""
    now = datetime.now(timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test etcd CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files = {"ca": directory / "ca.crt", "ca_pair": (ca_cert, ca_key)}
    for spec in certs:
        crt, key = _issue(spec, ca_cert, ca_key)
        base = directory / (spec["crt"].rsplit(".", 1)[0] if spec["secret"] == "members" else "client")
        base.with_suffix(".crt").write_bytes(crt)
        base.with_suffix(".key").write_bytes(key)
        base.with_suffix(".key").chmod(0o600)
        files[spec["name"]] = base
    return files


# --- the members -------------------------------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    """Ports free now, from the kernel's ephemeral range (above 30000 on Linux)."""
    socks = [socket.socket() for _n in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert all(p > 30000 for p in ports), ports
    return ports


def http_status(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as exc:
        return 0, str(exc)


def wait_for(predicate, what: str, deadline: float):
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)  # polling interval of a condition wait with a deadline
    raise AssertionError(f"not within {DEADLINE_S:.0f} s: {what}")


class Cluster:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        data = role_vars(etcd_namespace=NS)
        self.data = data
        self.pods = [f"{data['etcd_name']}-{n}" for n in range(int(data["etcd_replicas"]))]
        self.entries = data["etcd__container_env"]
        members = members_configmap(data)
        self.configmaps = {members["metadata"]["name"]: members["data"]}
        self.files = write_certificates(data["etcd__tls_certs"], tmp / "tls")
        ports = free_ports(3 * len(self.pods))
        self.ports = {pod: {"client": ports[3 * n], "peer": ports[3 * n + 1], "metrics": ports[3 * n + 2]}
                      for n, pod in enumerate(self.pods)}
        self.envs = {pod: self._local_env(pod) for pod in self.pods}
        self.procs: dict[str, subprocess.Popen] = {}

    def _local_env(self, pod: str) -> dict[str, str]:
        """The pod's environment, moved onto loopback: names and ports, the Secret's and the volume's paths."""
        data, env = self.data, pod_env(self.entries, pod, self.configmaps)
        domain = data["etcd__member_domain"]
        role_ports = {"client": int(data["etcd_client_port"]), "peer": int(data["etcd_peer_port"]),
                      "metrics": int(data["etcd_metrics_port"])}
        for name, value in env.items():
            for other in self.pods:
                for kind in ("client", "peer"):
                    value = value.replace(f"{other}.{domain}:{role_ports[kind]}", f"127.0.0.1:{self.ports[other][kind]}")
            for kind, port in role_ports.items():
                value = value.replace(f"0.0.0.0:{port}", f"127.0.0.1:{self.ports[pod][kind]}")
            value = value.replace(data["etcd__tls_dir"] + "/", str(self.tmp / "tls") + "/")
            value = value.replace("/var/lib/etcd/", str(self.tmp / pod) + "/")
            env[name] = value
        return env

    def url(self, pod: str, kind: str, path: str = "") -> str:
        scheme = "http" if kind == "metrics" else "https"
        return f"{scheme}://127.0.0.1:{self.ports[pod][kind]}{path}"

    def start(self, pod: str) -> None:
        log = (self.tmp / f"{pod}.log").open("w", encoding="utf-8")
        self.procs[pod] = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(ETCD)], env={"PATH": "/usr/bin:/bin", **self.envs[pod]}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)

    def log(self, pod: str) -> str:
        return (self.tmp / f"{pod}.log").read_text(encoding="utf-8", errors="replace")

    def etcdctl(self, *args: str, endpoints: list[str], cert: str | None = "etcd-client", env: dict | None = None,
                timeout: float = 20) -> subprocess.CompletedProcess:
        tls = []
        if cert is not None:
            tls = [f"--cacert={self.files['ca']}", f"--cert={self.files[cert]}.crt", f"--key={self.files[cert]}.key"]
        elif env is None:
            tls = [f"--cacert={self.files['ca']}"]
        argv = [str(ETCDCTL), f"--endpoints={','.join(endpoints)}", "--command-timeout=5s", *tls, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,  # noqa: S603
                              env={"PATH": "/usr/bin:/bin", **(env or {})})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    members = Cluster(tmp_path_factory.mktemp("etcd-tls"))
    deadline = time.monotonic() + DEADLINE_S
    try:
        for pod in members.pods:
            # OrderedReady (the role's default): the next ordinal once this one passes the readiness probe.
            members.start(pod)
            wait_for(lambda p=pod: http_status(members.url(p, "metrics", "/readyz?exclude=linearizable_read"))[0] == 200,
                     f"{pod} ready by its probe; log: {members.log(pod)[-2000:]}", deadline)
        yield members
    finally:
        members.stop()
        assert all(proc.poll() is not None for proc in members.procs.values())


def client_endpoints(cluster: Cluster) -> list[str]:
    return [cluster.url(pod, "client") for pod in cluster.pods]


def test_the_pods_environment_is_tls_with_each_members_own_certificate():
    data = role_vars(etcd_namespace=NS)
    members = members_configmap(data)
    env = pod_env(data["etcd__container_env"], "etcd-1", {members["metadata"]["name"]: members["data"]})
    assert env["ETCD_CERT_FILE"] == env["ETCD_PEER_CERT_FILE"] == env["ETCDCTL_CERT"] == "/etc/etcd/tls/etcd-1.crt"
    assert env["ETCD_KEY_FILE"] == env["ETCD_PEER_KEY_FILE"] == env["ETCDCTL_KEY"] == "/etc/etcd/tls/etcd-1.key"
    assert env["ETCD_CLIENT_CERT_AUTH"] == env["ETCD_PEER_CLIENT_CERT_AUTH"] == "true"
    assert env["ETCD_ADVERTISE_CLIENT_URLS"] == "https://etcd-1.etcd.db.svc.cluster.local:2379"
    assert env["ETCD_INITIAL_CLUSTER"].count("=https://") == 3
    assert env["ETCD_LISTEN_METRICS_URLS"] == "http://0.0.0.0:2381"
    member = next(c for c in data["etcd__tls_certs"] if c["name"] == "etcd-1")
    assert {"etcd-1.etcd.db.svc.cluster.local", "etcd-client.db.svc.cluster.local", "localhost"} <= set(member["dns"])
    assert member["ips"] == ["127.0.0.1"] and member["usages"] == ["serverAuth", "clientAuth"]
    # TLS off: plain HTTP, no TLS variable.
    plain_data = role_vars(etcd_namespace=NS, etcd_tls=False)
    plain_cm = members_configmap(plain_data)
    plain = pod_env(plain_data["etcd__container_env"], "etcd-1", {plain_cm["metadata"]["name"]: plain_cm["data"]})
    assert plain["ETCD_ADVERTISE_CLIENT_URLS"].startswith("http://") and "ETCD_CERT_FILE" not in plain


def test_the_members_form_one_cluster_over_tls(cluster):
    listed = cluster.etcdctl("member", "list", "-w", "json", endpoints=client_endpoints(cluster)[:1])
    assert listed.returncode == 0, listed.stderr
    members = json.loads(listed.stdout)["members"]
    # A member listed without a name has not started.
    assert sorted(m.get("name", "") for m in members) == cluster.pods
    for member in members:
        assert member["peerURLs"] == [cluster.url(member["name"], "peer")]
        assert member["clientURLs"] == [cluster.url(member["name"], "client")]


def test_every_member_is_healthy_over_tls(cluster):
    health = cluster.etcdctl("endpoint", "health", "-w", "json", endpoints=client_endpoints(cluster))
    assert health.returncode == 0, health.stderr
    report = json.loads(health.stdout)
    assert sorted(e["endpoint"] for e in report) == sorted(client_endpoints(cluster))
    assert all(e["health"] for e in report), report


def test_a_key_put_through_member_0_is_read_through_member_2(cluster):
    put = cluster.etcdctl("put", "kubess/tls", "written-on-0", endpoints=[cluster.url(cluster.pods[0], "client")])
    assert put.returncode == 0, put.stderr
    got = cluster.etcdctl("get", "kubess/tls", "--print-value-only", endpoints=[cluster.url(cluster.pods[-1], "client")])
    assert (got.returncode, got.stdout.strip()) == (0, "written-on-0"), got.stderr


def test_etcdctl_in_a_pod_needs_only_the_endpoint(cluster):
    # The pod's ETCDCTL_CACERT/CERT/KEY (the member's own certificate), as `kubectl exec etcd-2 -- etcdctl` sees them.
    pod = cluster.pods[2]
    env = {k: v for k, v in cluster.envs[pod].items() if k.startswith("ETCDCTL_")}
    assert set(env) == {"ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY"}
    done = cluster.etcdctl("endpoint", "health", endpoints=[cluster.url(pod, "client")], cert=None, env=env)
    assert done.returncode == 0, done.stderr


def test_a_client_without_a_certificate_is_refused(cluster):
    pod = cluster.pods[0]
    done = cluster.etcdctl("endpoint", "health", endpoints=[cluster.url(pod, "client")], cert=None)
    assert done.returncode != 0 and "is unhealthy" in done.stderr, done.stderr
    # What etcdctl saw: the server closed the connection (TLS 1.3 refuses after the client's part of the handshake);
    # why, in the member's log and in the TLS alert a client reads.
    assert "tls: client didn't provide a certificate" in cluster.log(pod)
    context = ssl.create_default_context(cafile=str(cluster.files["ca"]))
    with socket.create_connection(("127.0.0.1", cluster.ports[pod]["client"]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            with pytest.raises(ssl.SSLError, match="(?i)certificate required"):
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                conn.recv(1024)


def test_plain_http_to_the_client_port_is_not_served(cluster):
    status, body = http_status(cluster.url(cluster.pods[0], "client", "/health").replace("https://", "http://"))
    # Go's TLS server answers a plain HTTP request with 400 "Client sent an HTTP request to an HTTPS server".
    assert status != 200 and '"health"' not in body, (status, body)


def test_the_probes_metrics_listener_stays_plain_http(cluster):
    for pod in cluster.pods:
        assert http_status(cluster.url(pod, "metrics", "/livez"))[0] == 200
        assert http_status(cluster.url(pod, "metrics", "/readyz"))[0] == 200


def test_etcd_recognised_every_variable(cluster):
    for pod in cluster.pods:
        unknown = [line for line in cluster.log(pod).splitlines() if "unrecognized environment variable" in line]
        assert unknown == [], unknown


def test_a_certificate_issued_again_is_served_on_new_connections_without_a_restart(cluster):
    # What a renewal does in a pod: the kubelet replaces the mounted files; the member keeps running.
    pod = cluster.pods[0]
    spec = next(c for c in cluster.data["etcd__tls_certs"] if c["name"] == pod)

    def served_serial() -> int:
        context = ssl.create_default_context(cafile=str(cluster.files["ca"]))
        context.load_cert_chain(f"{cluster.files[pod]}.crt", f"{cluster.files[pod]}.key")
        with socket.create_connection(("127.0.0.1", cluster.ports[pod]["client"]), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as conn:
                return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True)).serial_number

    before = served_serial()
    crt, key = _issue(spec, *cluster.files["ca_pair"])
    Path(f"{cluster.files[pod]}.key").write_bytes(key)
    Path(f"{cluster.files[pod]}.crt").write_bytes(crt)
    new = x509.load_pem_x509_certificate(crt).serial_number
    assert new != before
    wait_for(lambda: served_serial() == new, f"{pod} serves its new certificate", time.monotonic() + DEADLINE_S)
    assert cluster.procs[pod].poll() is None
    health = cluster.etcdctl("endpoint", "health", endpoints=client_endpoints(cluster))
    assert health.returncode == 0, health.stderr
