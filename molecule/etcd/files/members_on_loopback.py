"""Run the members of an etcd StatefulSet, as applied to the cluster, with the real etcd binary on this machine.

kwok runs no container, so what etcd does with the manifest's configuration is checked here: each member gets the
environment its pod would see (the downward API's pod name and namespace, then Kubernetes' $(VAR) expansion, in
order), its own loopback address, and a private /etc/hosts (a mount namespace) that resolves the members' stable
DNS names (<pod>.<service>.<namespace>.svc.<domain>) to those addresses. Only the listen addresses change
(0.0.0.0 becomes the member's address, as each pod has its own network). Members are started the way the
StatefulSet controller starts pods under the set's podManagementPolicy, and the probe paths of the manifest are
requested the way the kubelet would.

With TLS (the StatefulSet mounts a Secret named `tls`), the Secret's keys (TLS_SECRET_JSON, the object as the API
returns it) are written to WORKDIR/tls and the paths under the mount move there; the script's own requests to the
client port use the CA and the first member's certificate (check of the chain, not of the host name: the members are
reached by address), and it checks that a client without a certificate and plain HTTP are refused.

Prints one JSON document with what was observed and exits non-zero if a check failed. Everything it starts is
stopped before it exits; it talks only to loopback addresses.

usage: members_on_loopback.py STATEFULSET_JSON ETCD_BINARY WORKDIR [FIRST_ADDRESS_OCTET [TLS_SECRET_JSON]]
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

DEADLINE_S = 60.0
# The client side of the script's requests to https client ports (set in main when the members use TLS).
TLS: dict[str, ssl.SSLContext] = {}
EXPANSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined earlier in the list -> value, otherwise left as it is."""
    return EXPANSION.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def pod_env(container: dict, pod: str, namespace: str, configmaps: dict[str, dict]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(item["value"], env)
            continue
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        if ref:
            if ref["key"] not in configmaps.get(ref["name"], {}):
                raise SystemExit(f"{item['name']}: ConfigMap {ref['name']} has no key {ref['key']} (given: {configmaps})")
            env[item["name"]] = configmaps[ref["name"]][ref["key"]]
            continue
        field = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field == "metadata.name":
            env[item["name"]] = pod
        elif field == "metadata.namespace":
            env[item["name"]] = namespace
        else:
            raise SystemExit(f"unsupported env source for {item['name']}: {item}")
    return env


def http_status(url: str, timeout: float = 2.0, data: bytes | None = None, context_name: str = "client") -> tuple[int, str]:
    try:
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        context = TLS.get(context_name) if url.startswith("https://") else None
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


def wait_status(url: str, want: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if http_status(url)[0] == want:
            return True
        time.sleep(0.2)  # polling interval of a condition wait with a deadline
    return False


class Member:
    def __init__(self, ordinal, pod, env, address, ports, workdir):
        self.ordinal, self.pod, self.env, self.address, self.ports = ordinal, pod, env, address, ports
        self.log = os.path.join(workdir, f"{pod}.log")
        self.proc: subprocess.Popen | None = None

    def url(self, port_name: str, path: str) -> str:
        scheme = "https" if port_name == "client" and self.env.get("ETCD_CLIENT_CERT_AUTH") == "true" else "http"
        return f"{scheme}://{self.address}:{self.ports[port_name]}{path}"

    def start(self, etcd: str, hosts_file: str) -> None:
        env = {"PATH": "/usr/bin:/bin", **self.env}
        # A private mount namespace whose /etc/hosts resolves the members' DNS names, as the cluster DNS would.
        script = 'mount --bind "$0" /etc/hosts && exec "$1"'
        with open(self.log, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, hosts_file, etcd],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def unrecognized_env(self) -> list[str]:
        if not os.path.exists(self.log):
            return []
        with open(self.log, encoding="utf-8", errors="replace") as fh:
            return [line.strip() for line in fh if "unrecognized environment variable" in line]


def main(argv: list[str]) -> int:
    sts_file, etcd, workdir = argv[1], argv[2], argv[3]
    first_octet = int(argv[4]) if len(argv) > 4 else 11
    tls_secret_file = argv[5] if len(argv) > 5 else ""
    configmaps: dict[str, dict] = {}
    if len(argv) > 6:  # the ConfigMaps the environment reads from, as a JSON list
        with open(argv[6], encoding="utf-8") as fh:
            configmaps = {cm["metadata"]["name"]: cm.get("data") or {} for cm in json.load(fh)}
    with open(sts_file, encoding="utf-8") as fh:
        sts = json.load(fh)
    meta, spec = sts["metadata"], sts["spec"]
    name, namespace, replicas = meta["name"], meta["namespace"], int(spec["replicas"])
    policy = spec.get("podManagementPolicy", "OrderedReady")
    container = next(c for c in spec["template"]["spec"]["containers"] if c["name"] == "etcd")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    os.makedirs(workdir, exist_ok=True)
    tls_mount = next((m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] == "tls"), "")
    tls_dir = os.path.join(workdir, "tls")
    if tls_mount:
        if not tls_secret_file:
            raise SystemExit("the StatefulSet mounts a TLS Secret: give its JSON as TLS_SECRET_JSON")
        with open(tls_secret_file, encoding="utf-8") as fh:
            tls_data = json.load(fh)["data"]
        os.makedirs(tls_dir, mode=0o700, exist_ok=True)
        for key, value in tls_data.items():
            path = os.path.join(tls_dir, key)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                out.write(base64.b64decode(value))
        first = f"{name}-0"
        TLS["client"] = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.crt"))
        TLS["client"].check_hostname = False
        TLS["client"].load_cert_chain(os.path.join(tls_dir, f"{first}.crt"), os.path.join(tls_dir, f"{first}.key"))
        TLS["anonymous"] = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.crt"))
        TLS["anonymous"].check_hostname = False

    report: dict = {"statefulset": f"{namespace}/{name}", "policy": policy, "readiness_path": readiness["path"],
                    "checks": {}, "failed": []}

    def check(label: str, ok: bool, detail=None) -> None:
        report["checks"][label] = ok if detail is None else {"ok": ok, "detail": detail}
        if not ok:
            report["failed"].append(label)

    members: list[Member] = []
    hosts_lines = []
    for ordinal in range(replicas):
        pod = f"{name}-{ordinal}"
        env = pod_env(container, pod, namespace, configmaps)
        address = f"127.0.0.{first_octet + ordinal}"
        for key in ("ETCD_LISTEN_PEER_URLS", "ETCD_LISTEN_CLIENT_URLS", "ETCD_LISTEN_METRICS_URLS"):
            env[key] = env[key].replace("0.0.0.0", address)
        env["ETCD_DATA_DIR"] = os.path.join(workdir, pod, env["ETCD_DATA_DIR"].lstrip("/"))
        if tls_mount:
            env = {k: v.replace(tls_mount.rstrip("/") + "/", tls_dir + "/") for k, v in env.items()}
        members.append(Member(ordinal, pod, env, address, ports, workdir))
        peer_host = urlsplit(env["ETCD_INITIAL_ADVERTISE_PEER_URLS"]).hostname
        hosts_lines.append(f"{address} {peer_host}")
        check(f"{pod}: ETCD_NAME is the pod name", env.get("ETCD_NAME") == pod, env.get("ETCD_NAME"))
        initial = dict(entry.split("=", 1) for entry in env["ETCD_INITIAL_CLUSTER"].split(","))
        check(f"{pod}: its advertised peer URL is its entry in the initial cluster",
              initial.get(pod) == env["ETCD_INITIAL_ADVERTISE_PEER_URLS"],
              [initial.get(pod), env["ETCD_INITIAL_ADVERTISE_PEER_URLS"]])
    check("the initial cluster lists every ordinal, in order",
          [e.split("=", 1)[0] for e in members[0].env["ETCD_INITIAL_CLUSTER"].split(",")]
          == [m.pod for m in members])
    hosts_file = os.path.join(workdir, "hosts")
    with open(hosts_file, "w", encoding="utf-8") as fh:
        fh.write("127.0.0.1 localhost\n" + "\n".join(hosts_lines) + "\n")

    deadline = time.monotonic() + DEADLINE_S
    try:
        if policy == "OrderedReady":
            for member in members:
                member.start(etcd, hosts_file)
                ready = wait_status(member.url(readiness["port"], readiness["path"]), 200, deadline)
                check(f"{member.pod}: Ready by its readiness probe before the next ordinal starts", ready)
                if not ready:
                    # The StatefulSet controller would never start the next ordinal: the set is stuck here.
                    report["stuck_at"] = member.pod
                    break
                if member.ordinal == 0 and replicas > 1:
                    # Alone, the member has no quorum: the client port does not serve, a quorum read cannot answer.
                    check(f"{member.pod}: alone, the client port serves nothing yet",
                          http_status(member.url("client", "/readyz"), timeout=1.0)[0] == 0)
                    check(f"{member.pod}: alone, /readyz (quorum read) is not ready",
                          http_status(member.url("metrics", "/readyz"), timeout=3.0)[0] != 200)
        else:
            for member in members:
                member.start(etcd, hosts_file)
            for member in members:
                check(f"{member.pod}: Ready by its readiness probe",
                      wait_status(member.url(readiness["port"], readiness["path"]), 200, deadline))

        for member in members if "stuck_at" not in report else []:
            check(f"{member.pod}: live by its liveness probe",
                  wait_status(member.url(liveness["port"], liveness["path"]), 200, deadline))
            check(f"{member.pod}: serves clients, /readyz with quorum",
                  wait_status(member.url("client", "/readyz"), 200, deadline))

        if "stuck_at" in report:
            return finish(report, members)
        status, body = http_status(members[0].url("client", "/v3/cluster/member/list"), data=b"{}")
        names = sorted(m.get("name", "") for m in (json.loads(body).get("members", []) if status == 200 else []))
        check("the cluster has one member per ordinal", names == sorted(m.pod for m in members), names)

        key, value = base64.b64encode(b"kubess/check").decode(), base64.b64encode(b"written-on-0").decode()
        put = http_status(members[0].url("client", "/v3/kv/put"),
                          data=json.dumps({"key": key, "value": value}).encode())[0]
        status, body = http_status(members[-1].url("client", "/v3/kv/range"),
                                   data=json.dumps({"key": key}).encode())
        kvs = json.loads(body).get("kvs", []) if status == 200 else []
        check(f"a key written on {members[0].pod} is read on {members[-1].pod}",
              put == 200 and len(kvs) == 1 and kvs[0].get("value") == value)

        if tls_mount:
            refused = http_status(members[0].url("client", "/health"), context_name="anonymous")
            check(f"{members[0].pod}: a client without a certificate is refused", refused[0] == 0, refused[1][:200])
            plain = http_status(members[0].url("client", "/health").replace("https://", "http://"))
            check(f"{members[0].pod}: plain HTTP to the client port is not served", plain[0] != 200, plain[0])

        for member in members:
            check(f"{member.pod}: etcd recognised every ETCD_ variable", not member.unrecognized_env(),
                  member.unrecognized_env())
    finally:
        for member in members:
            member.stop()
    return finish(report, members)


def finish(report: dict, members: list[Member]) -> int:
    for member in members:
        member.stop()
    report["stopped"] = all(m.proc is None or m.proc.poll() is not None for m in members)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 1 if report["failed"] or not report["stopped"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
