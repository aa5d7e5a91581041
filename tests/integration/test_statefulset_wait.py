"""kubess.stateful.statefulset_wait on the local cluster, run through ansible-playbook as a role would run it.

Each test makes its own StatefulSets in a fresh namespace (prefix ``sw-``) and reads the module's JSON
result (json stdout callback). Pod behaviour comes from the cluster's kwok stages: the annotation
``pod-ready.stage.kwok.x-k8s.io/delay`` delays readiness, the label ``stuck.stage.kubess.io/reason``
keeps a pod from ever becoming Ready, and the label ``pod-container-running-failed.stage.kwok.x-k8s.io``
makes a Running pod fail.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "tools" / "localcluster" / "cluster.sh"
MODULE = "kubess.stateful.statefulset_wait"
DELAY_ANNOTATION = "pod-ready.stage.kwok.x-k8s.io/delay"
STUCK_LABEL = "stuck.stage.kubess.io/reason"
CHAOS_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def namespace(cluster):
    """A fresh namespace with this file's prefix, deleted (with what is in it) when the test ends."""
    name = f"sw-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _ansible_env(cluster) -> dict[str, str]:
    env = dict(cluster.env)
    if not env.get("ANSIBLE_COLLECTIONS_PATH"):
        cache = Path(env.get("KUBESS_CACHE_DIR", Path.home() / ".cache" / "kubess-stateful"))
        env["ANSIBLE_COLLECTIONS_PATH"] = str(cache / "collections" / hashlib.sha256(str(REPO).encode()).hexdigest()[:12])
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    env["ANSIBLE_STDOUT_CALLBACK"] = "json"
    env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


class ModuleRun:
    """One ansible-playbook run of the module, in the background; ``result()`` waits for it and parses its JSON."""

    def __init__(self, cluster, tmp_path: Path, args: dict, check_mode: bool = False, module: str = MODULE):
        playbook = tmp_path / f"wait-{uuid.uuid4().hex[:6]}.yml"
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "wait", module: args}]}]
        playbook.write_text(json.dumps(play), encoding="utf-8")
        cmd = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ] + (["--check"] if check_mode else [])
        self.started = time.time()
        self.proc = subprocess.Popen(cmd, env=_ansible_env(cluster), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.ended = None
        self.stdout = self.stderr = ""

    def running(self) -> bool:
        return self.proc.poll() is None

    def result(self, timeout: float = 240) -> dict:
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        self.ended = time.time()
        try:
            out = json.loads(self.stdout)
            res = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError) as err:
            raise AssertionError(f"no module result ({err}): rc={self.proc.returncode}\n{self.stdout}\n{self.stderr}") from err
        res["_rc"] = self.proc.returncode
        return res


def run_module(cluster, tmp_path, check_mode=False, **args) -> dict:
    return ModuleRun(cluster, tmp_path, args, check_mode).result()


def sts_manifest(name, replicas=3, delay=None, labels=None, policy="OrderedReady", partition=None,
                 node_selector=None, claim_class=None, annotations=None, strategy=None) -> str:
    pod_annotations = dict(annotations or {})
    if delay:
        pod_annotations[DELAY_ANNOTATION] = delay
    spec = {
        "replicas": replicas,
        "serviceName": name,
        "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name, **(labels or {})}, "annotations": pod_annotations},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/kubess/app:1"}]},
        },
    }
    if node_selector:
        spec["template"]["spec"]["nodeSelector"] = node_selector
    if partition is not None:
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    if strategy == "OnDelete":
        spec["updateStrategy"] = {"type": "OnDelete"}
    if claim_class is not None:
        spec["volumeClaimTemplates"] = [{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": claim_class,
                     "resources": {"requests": {"storage": "1Gi"}}},
        }]
    return json.dumps({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec})


def pod_is_ready(pod: dict) -> bool:
    if pod.get("metadata", {}).get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def get_pod(cluster, namespace, name) -> dict | None:
    res = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def wait_pods_ready(cluster, namespace, names, timeout=60):
    cluster.wait_for(lambda: all(pod_is_ready(get_pod(cluster, namespace, n) or {}) for n in names),
                     timeout=timeout, what=f"pods {names} Ready")


def _audit_lines(cluster):
    with open(cluster.audit_log, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def module_is_watching(cluster, namespace, resource, since) -> bool:
    """True once the audit log shows a watch on ``resource`` in ``namespace`` from a Python client, started after ``since``."""
    from datetime import datetime

    for ev in _audit_lines(cluster):
        ref = ev.get("objectRef") or {}
        if (ev.get("stage") == "ResponseStarted" and ev.get("verb") == "watch" and ref.get("resource") == resource
                and ref.get("namespace") == namespace and "python" in ev.get("userAgent", "").lower()
                and datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp() >= since):
            return True
    return False


class ReadyWatch(threading.Thread):
    """An independent watch on the namespace's pods: the wall-clock time each pod was first seen Ready."""

    def __init__(self, cluster, namespace):
        super().__init__(daemon=True)
        self.cluster, self.namespace = cluster, namespace
        self.ready_at: dict[str, float] = {}
        self.proc = None

    def run(self):
        self.proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(self.cluster.kubeconfig), "get", "pods", "-n", self.namespace,
             "--watch", "--output-watch-events", "-o", "json"],
            env=self.cluster.env, stdout=subprocess.PIPE, text=True,
        )
        decoder = json.JSONDecoder()
        buf = ""
        for line in self.proc.stdout:
            buf += line
            try:
                event, _end = decoder.raw_decode(buf.strip())
            except ValueError:
                continue
            buf = ""
            pod = event.get("object", {})
            name = pod.get("metadata", {}).get("name")
            if pod_is_ready(pod) and name not in self.ready_at:
                self.ready_at[name] = time.time()

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- readiness


def test_waits_ordinal_by_ordinal_and_returns_promptly(cluster, namespace, tmp_path):
    watch = ReadyWatch(cluster, namespace)
    watch.start()
    since = time.time()
    run = ModuleRun(cluster, tmp_path, {"name": "web", "namespace": namespace, "timeout": 120, "wait_for_set": True})
    # The module is waiting before the set exists, so it sees every ordinal become Ready.
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "statefulsets", since), timeout=60, what="the module's watch")
    cluster.apply(sts_manifest("web", replicas=3, delay="500ms"), namespace)
    res = run.result()
    watch.stop()

    assert res["_rc"] == 0, res.get("msg")
    assert res["changed"] is False
    assert res["replicas"] == 3
    assert [o["ordinal"] for o in res["ordinals"]] == [0, 1, 2]
    assert [o["pod"] for o in res["ordinals"]] == ["web-0", "web-1", "web-2"]
    assert all(o["ready"] for o in res["ordinals"])
    times = [o["ready_seconds"] for o in res["ordinals"]]
    assert times == sorted(times) and len(set(times)) == 3, times
    # OrderedReady with 500 ms per pod: each ordinal is Ready at least ~half a second after the previous one.
    assert all(b - a >= 0.4 for a, b in zip(times, times[1:])), times
    # Returned as soon as the last ordinal was Ready: by its own clock, and by an independent watch.
    assert res["duration"] - times[-1] < 1.0, res
    assert run.ended - watch.ready_at["web-2"] < 5.0, (run.ended, watch.ready_at)
    # Watches, not polling: a handful of requests for a wait of several seconds.
    assert res["api_requests"] <= 6, res


def test_already_ready_set_returns_at_once(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("ready", replicas=2), namespace)
    wait_pods_ready(cluster, namespace, ["ready-0", "ready-1"])
    res = run_module(cluster, tmp_path, name="ready", namespace=namespace, timeout=60)
    assert res["_rc"] == 0, res.get("msg")
    assert [o["ready"] for o in res["ordinals"]] == [True, True]
    assert all(o["ready_seconds"] < 2.0 for o in res["ordinals"]), res["ordinals"]
    assert res["api_requests"] <= 4


def test_pod_deleted_and_recreated_while_waiting(cluster, namespace, tmp_path):
    since = time.time()
    run = ModuleRun(cluster, tmp_path, {"name": "db", "namespace": namespace, "timeout": 120, "wait_for_set": True})
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "statefulsets", since), timeout=60, what="the module's watch")
    cluster.apply(sts_manifest("db", replicas=3, delay="2s"), namespace)
    wait_pods_ready(cluster, namespace, ["db-0"])
    first_uid = get_pod(cluster, namespace, "db-0")["metadata"]["uid"]
    assert run.running(), "the module returned before ordinal 2 could be Ready"
    cluster.kubectl("delete", "pod", "db-0", "-n", namespace, "--wait=false")
    res = run.result()

    assert res["_rc"] == 0, res.get("msg")
    now_uid = get_pod(cluster, namespace, "db-0")["metadata"]["uid"]
    assert now_uid != first_uid
    entry = res["ordinals"][0]
    assert entry["uid"] == now_uid and entry["ready"], entry
    assert all(o["ready"] for o in res["ordinals"])


# --------------------------------------------------------------------------- rolling updates


def test_partition_is_honoured_on_a_rolling_update(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("part", replicas=3, partition=2), namespace)
    wait_pods_ready(cluster, namespace, ["part-0", "part-1", "part-2"])
    old_rev = cluster.get_json("statefulset", "part", "-n", namespace)["status"]["updateRevision"]
    # A new template, with a readiness delay so the module really waits for ordinal 2 to be replaced.
    cluster.apply(sts_manifest("part", replicas=3, partition=2, delay="1500ms", annotations={"kubess.io/config": "v2"}), namespace)
    res = run_module(cluster, tmp_path, name="part", namespace=namespace, timeout=120)

    assert res["_rc"] == 0, res.get("msg")
    new_rev = cluster.get_json("statefulset", "part", "-n", namespace)["status"]["updateRevision"]
    assert new_rev != old_rev
    assert res["update_revision"] == new_rev and res["partition"] == 2
    revisions = [o["revision"] for o in res["ordinals"]]
    assert revisions == [old_rev, old_rev, new_rev], revisions  # 0 and 1 below the partition keep the old one
    assert all(o["ready"] for o in res["ordinals"])


def test_on_delete_strategy_does_not_wait_for_the_revision(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("manual", replicas=2, strategy="OnDelete"), namespace)
    wait_pods_ready(cluster, namespace, ["manual-0", "manual-1"])
    old_rev = cluster.get_json("statefulset", "manual", "-n", namespace)["status"]["updateRevision"]
    # With OnDelete the controller replaces no pod: both keep the old revision, and that is what the user asked for.
    cluster.apply(sts_manifest("manual", replicas=2, strategy="OnDelete", annotations={"kubess.io/config": "v2"}), namespace)
    cluster.wait_for(lambda: cluster.get_json("statefulset", "manual", "-n", namespace)["status"]["updateRevision"] != old_rev,
                     timeout=30, what="the new update revision")
    res = run_module(cluster, tmp_path, name="manual", namespace=namespace, timeout=60)
    assert res["_rc"] == 0, res.get("msg")
    assert res["update_revision"] is None
    assert [o["revision"] for o in res["ordinals"]] == [old_rev, old_rev]


def test_wait_for_update_false_accepts_the_old_revision(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("lazy", replicas=2, partition=0), namespace)
    wait_pods_ready(cluster, namespace, ["lazy-0", "lazy-1"])
    # The new template's pods would never be Ready: freeze the update at partition 2 so the old pods stay.
    cluster.apply(sts_manifest("lazy", replicas=2, partition=2, labels={STUCK_LABEL: "ImagePullBackOff"}), namespace)
    res = run_module(cluster, tmp_path, name="lazy", namespace=namespace, timeout=60, wait_for_update=False)
    assert res["_rc"] == 0, res.get("msg")
    assert res["update_revision"] is None
    assert all(o["ready"] for o in res["ordinals"])


# --------------------------------------------------------------------------- failing fast


def test_stuck_ordinal_one_fails_fast_with_ordinal_and_reason(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("app", replicas=2), namespace)
    wait_pods_ready(cluster, namespace, ["app-0", "app-1"])
    # A rolling update with partition 1 replaces only ordinal 1, with a template whose pods never pull their image.
    cluster.apply(sts_manifest("app", replicas=2, partition=1, labels={STUCK_LABEL: "ImagePullBackOff"}), namespace)
    res = run_module(cluster, tmp_path, name="app", namespace=namespace, timeout=120)

    assert res["_rc"] != 0 and res.get("failed")
    assert res["reason"] == "ImagePullBackOff"
    assert res["ordinal"] == 1 and res["pod"] == "app-1"
    msg = res["msg"]
    for part in (f"StatefulSet {namespace}/app", "ordinal 1", "pod app-1", "ImagePullBackOff", "made to fail by the test",
                 "Last events", "Try:"):
        assert part in msg, (part, msg)
    assert res["duration"] < 30, res["duration"]  # well before the 120 s timeout
    assert res["ordinals"][0]["ready"] is True  # ordinal 0 keeps the old revision below the partition


@pytest.mark.parametrize("reason", ["CrashLoopBackOff", "CreateContainerConfigError", "Failed"])
def test_failing_ordinal_fails_fast(cluster, namespace, tmp_path, reason):
    cluster.apply(sts_manifest("bad", replicas=2, labels={STUCK_LABEL: reason}), namespace)
    res = run_module(cluster, tmp_path, name="bad", namespace=namespace, timeout=120)
    assert res["_rc"] != 0
    assert res["reason"] == reason, res["msg"]
    assert res["ordinal"] == 0 and res["pod"] == "bad-0"
    assert "ordinal 0" in res["msg"] and reason in res["msg"]
    assert res["duration"] < 30, res["duration"]


def test_pod_failing_while_waiting_fails_fast(cluster, namespace, tmp_path):
    since = time.time()
    run = ModuleRun(cluster, tmp_path, {"name": "crash", "namespace": namespace, "timeout": 120, "wait_for_set": True})
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "statefulsets", since), timeout=60, what="the module's watch")
    cluster.apply(sts_manifest("crash", replicas=3, delay="3s"), namespace)
    wait_pods_ready(cluster, namespace, ["crash-0"])
    assert run.running()
    # kwok's chaos stage turns the Running pod 0 into a Failed one while the module waits for ordinal 1.
    cluster.kubectl("label", "pod", "crash-0", "-n", namespace, f"{CHAOS_LABEL}=true")
    res = run.result()
    assert res["_rc"] != 0
    assert res["reason"] == "Failed" and res["ordinal"] == 0, res["msg"]
    assert "phase is Failed" in res["msg"]
    assert res["duration"] < 60


@pytest.mark.parametrize("claim_class", ["", "sw-no-such-class"])
def test_claim_without_volume_fails_fast(cluster, namespace, tmp_path, claim_class):
    cluster.apply(sts_manifest("vol", replicas=2, claim_class=claim_class), namespace)
    res = run_module(cluster, tmp_path, name="vol", namespace=namespace, timeout=120)
    assert res["_rc"] != 0
    assert res["reason"] == "PersistentVolumeClaimPending", res["msg"]
    assert res["ordinal"] == 0
    assert "data-vol-0" in res["msg"] and "Pending" in res["msg"]
    expected = "no persistent volumes available" if claim_class == "" else f'"{claim_class}" not found'
    assert expected in res["msg"]
    assert res["duration"] < 45


def test_unschedulable_pod_fails_fast_with_the_scheduler_message(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("pinned", replicas=2, node_selector={f"{namespace}/missing": "true"}), namespace)
    res = run_module(cluster, tmp_path, name="pinned", namespace=namespace, timeout=120)
    assert res["_rc"] != 0
    assert res["reason"] == "Unschedulable"
    assert "didn't match Pod's node affinity/selector" in res["msg"]
    assert res["ordinal"] == 0 and res["pod"] == "pinned-0"
    assert res["duration"] < 30


def test_fail_fast_off_waits_until_the_timeout(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("patient", replicas=1, labels={STUCK_LABEL: "CrashLoopBackOff"}), namespace)
    res = run_module(cluster, tmp_path, name="patient", namespace=namespace, timeout=5, fail_fast=False)
    assert res["_rc"] != 0
    assert res["reason"] == "Timeout"
    assert res["duration"] >= 5
    assert "CrashLoopBackOff" in res["msg"]  # the pod's state, in the timeout message


# --------------------------------------------------------------------------- timeouts and missing sets


def test_timeout_names_the_ordinal_and_its_state(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("slow", replicas=2, delay="10m"), namespace)
    res = run_module(cluster, tmp_path, name="slow", namespace=namespace, timeout=4)
    assert res["_rc"] != 0
    assert res["reason"] == "Timeout"
    msg = res["msg"]
    assert "Timed out after 4s" in msg and "waiting for ordinal 0" in msg and "pod slow-0" in msg
    assert "phase Pending" in msg and "raise timeout" in msg
    assert res["ordinal"] == 0


def test_timeout_on_an_ordinal_the_controller_never_creates(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("short", replicas=2), namespace)
    wait_pods_ready(cluster, namespace, ["short-0", "short-1"])
    res = run_module(cluster, tmp_path, name="short", namespace=namespace, timeout=3, replicas=3)
    assert res["_rc"] != 0
    assert res["ordinal"] == 2
    assert "pod short-2 does not exist: the set's spec.replicas is 2, so the controller does not create it" in res["msg"]
    assert "stall" not in res  # the controller owes nothing: 3 ordinals were asked of a set of 2
    assert [o["ready"] for o in res["ordinals"]] == [True, True, False]


def test_missing_set_fails_clearly(cluster, namespace, tmp_path):
    res = run_module(cluster, tmp_path, name="ghost", namespace=namespace, timeout=120)
    assert res["_rc"] != 0
    assert res["reason"] == "StatefulSetNotFound"
    assert f"StatefulSet {namespace}/ghost not found" in res["msg"] and "wait_for_set" in res["msg"]
    assert res["duration"] < 10


def test_wait_for_set_waits_until_it_appears(cluster, namespace, tmp_path):
    since = time.time()
    run = ModuleRun(cluster, tmp_path, {"name": "later", "namespace": namespace, "timeout": 120, "wait_for_set": True})
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "statefulsets", since), timeout=60, what="the module's watch")
    assert run.running()
    cluster.apply(sts_manifest("later", replicas=2), namespace)
    res = run.result()
    assert res["_rc"] == 0, res.get("msg")
    assert [o["ready"] for o in res["ordinals"]] == [True, True]


# --------------------------------------------------------------------------- check mode


def _events_in_window(cluster, namespace, start, end):
    from datetime import datetime

    out = []
    for ev in _audit_lines(cluster):
        if ev.get("stage") != "ResponseComplete":
            continue
        t = datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if start <= t <= end and (ev.get("objectRef") or {}).get("namespace") == namespace:
            out.append(ev)
    return out


def test_check_mode_reports_without_waiting_or_writing(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("chk", replicas=2, delay="10m"), namespace)
    # Let the controller and the scheduler finish their own writes first: pod 0 exists and is bound to a node.
    cluster.wait_for(lambda: (get_pod(cluster, namespace, "chk-0") or {}).get("spec", {}).get("nodeName"),
                     timeout=60, what="chk-0 scheduled")
    start = time.time()
    res = run_module(cluster, tmp_path, check_mode=True, name="chk", namespace=namespace, timeout=300)
    end = time.time()

    assert res["_rc"] == 0, res.get("msg")
    assert res["changed"] is False
    assert res["exists"] is True and res["ready"] is False
    assert res["would_wait_for"] == [0, 1]
    assert res["replicas"] == 2 and [o["ordinal"] for o in res["ordinals"]] == [0, 1]
    assert res["duration"] < 10  # returned without waiting (the pods need 10 minutes)
    cluster.wait_for(lambda: any("python" in e.get("userAgent", "").lower()
                                 for e in _events_in_window(cluster, namespace, start, end)),
                     timeout=30, what="the module's reads in the audit log")
    events = _events_in_window(cluster, namespace, start, end)
    module_reads = [e for e in events if "python" in e.get("userAgent", "").lower()]
    assert {e["verb"] for e in module_reads} <= {"get", "list"}, module_reads
    # The module acts as the kubeconfig's user, which kwok and the scheduler share: any write in the namespace by
    # that user during the run, other than theirs (by user agent), would be the module's.
    user = module_reads[0]["user"]["username"]
    writes = [(e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("name"), e.get("userAgent"))
              for e in events if e["verb"] in WRITE_VERBS and e["user"]["username"] == user
              and not e.get("userAgent", "").startswith(("kube-scheduler", "kwok-controller"))]
    assert writes == [], writes


def test_check_mode_on_a_missing_set_reports_it(cluster, namespace, tmp_path):
    res = run_module(cluster, tmp_path, check_mode=True, name="notyet", namespace=namespace, timeout=300)
    assert res["_rc"] == 0, res.get("msg")
    assert res["exists"] is False and res["ready"] is False
    assert "does not exist" in res["msg"]


def test_check_mode_on_a_ready_set(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("fine", replicas=2), namespace)
    wait_pods_ready(cluster, namespace, ["fine-0", "fine-1"])
    res = run_module(cluster, tmp_path, check_mode=True, name="fine", namespace=namespace)
    assert res["_rc"] == 0 and res["ready"] is True and res["would_wait_for"] == []


# --------------------------------------------------------------------------- lost connections


class FlakyProxy:
    """A TCP proxy in front of the API server that can drop every connection and refuse new ones for a while.

    TLS passes through untouched (the server certificate is for 127.0.0.1, whatever the port), so a client
    pointed at the proxy sees what it would see if the network or the API server went away and came back.
    """

    def __init__(self, upstream_host: str, upstream_port: int):
        import socket

        self._socket = socket
        self.upstream = (upstream_host, upstream_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.conns: list = []
        self.lock = threading.Lock()
        self.listener = None
        self.drops = 0
        self._listen()

    def _listen(self):
        sock = self._socket.socket()
        sock.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock):
        while True:
            try:
                client, _addr = sock.accept()
            except OSError:
                return
            try:
                upstream = self._socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass

    def drop(self, outage: float):
        """Close the listener and every connection now; listen again after ``outage`` seconds."""
        self.drops += 1
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for sock in conns:
            try:
                sock.shutdown(self._socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass
        threading.Timer(outage, self._listen).start()  # the length of the simulated outage

    def close(self):
        self.listener.close()


def test_survives_a_dropped_connection(cluster, namespace, tmp_path):
    import yaml
    from urllib.parse import urlparse

    config = yaml.safe_load(cluster.kubeconfig.read_text(encoding="utf-8"))
    server = urlparse(config["clusters"][0]["cluster"]["server"])
    proxy = FlakyProxy(server.hostname, server.port)
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://{server.hostname}:{proxy.port}"
    kubeconfig = tmp_path / "kubeconfig-via-proxy"
    kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")

    since = time.time()
    run = ModuleRun(cluster, tmp_path, {"name": "flaky", "namespace": namespace, "timeout": 120, "wait_for_set": True,
                                        "kubeconfig": str(kubeconfig)})
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "statefulsets", since), timeout=60, what="the module's watch")
    cluster.apply(sts_manifest("flaky", replicas=3, delay="6s", policy="Parallel"), namespace)
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "pods", since), timeout=60, what="the module's pod watch")
    assert run.running()
    proxy.drop(outage=3.0)  # the module loses both watches and cannot connect for 3 s, before any pod is Ready
    res = run.result()
    proxy.close()

    assert res["_rc"] == 0, res.get("msg")
    assert all(o["ready"] for o in res["ordinals"]), res["ordinals"]
    assert res["reconnects"] >= 1, res
    assert res["api_requests"] <= 20, res  # reconnects with backoff, not a tight loop


# --------------------------------------------------------------------------- API server restart


def _leader_elected_components() -> list[str]:
    """The running controller-manager / scheduler that take part in leader election (the default)."""
    out = []
    for name, pid in _control_plane_pids().items():
        if pid is None:
            continue
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"--leader-elect=false" not in args:
            out.append(name)
    return out


def _control_plane_pids() -> dict[str, str | None]:
    """kube-controller-manager and kube-scheduler: their PID if they run, else None."""
    out = {}
    for name in ("kube-controller-manager", "kube-scheduler"):
        pidfile = REPO / ".localcluster" / "kwok" / "clusters" / "kubess" / "pids" / f"{name}.pid"
        pid = pidfile.read_text().strip() if pidfile.exists() else ""
        out[name] = pid if pid and Path(f"/proc/{pid}/exe").exists() else None
    return out


def test_survives_an_apiserver_restart(cluster, namespace, tmp_path):
    # kube-apiserver drains its watches for up to 60 s when stopped; a leader-elected controller-manager or
    # scheduler cannot renew its lease meanwhile and exits, which would leave the shared cluster without them.
    electing = _leader_elected_components()
    assert not electing, (
        f"not restarting the API server: {electing} run with leader election and would exit during the restart; "
        "start them with --leader-elect=false (tools/localcluster/cluster.sh componentsPatches)"
    )
    since = time.time()
    run = ModuleRun(cluster, tmp_path, {"name": "tough", "namespace": namespace, "timeout": 240, "wait_for_set": True})
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "statefulsets", since), timeout=60, what="the module's watch")
    # Parallel: every pod exists and is bound before the restart, so readiness only needs kwok and the API server.
    cluster.apply(sts_manifest("tough", replicas=3, delay="8s", policy="Parallel"), namespace)
    cluster.wait_for(lambda: all((get_pod(cluster, namespace, f"tough-{i}") or {}).get("spec", {}).get("nodeName")
                                 for i in range(3)), timeout=60, what="every pod bound to a node")
    cluster.wait_for(lambda: module_is_watching(cluster, namespace, "pods", since), timeout=60, what="the module's pod watch")
    assert run.running()
    restart = subprocess.run([str(CLUSTER_SH), "restart-apiserver"], check=False, capture_output=True, text=True, timeout=180)
    assert restart.returncode == 0, restart.stderr
    res = run.result()

    assert res["_rc"] == 0, res.get("msg")
    assert all(o["ready"] for o in res["ordinals"]), res["ordinals"]
    assert res["reconnects"] >= 1, res  # it did lose the API server, and came back
    # The shared cluster must come out of the restart whole (leader-elected components exit when they lose the
    # API server for longer than their lease renewal deadline).
    dead = [name for name, pid in _control_plane_pids().items() if pid is None]
    assert not dead, f"after cluster.sh restart-apiserver these components are no longer running: {dead}"


# --------------------------------------------------------------------------- a controller that does not act


@pytest.fixture
def stop_component(cluster, namespace):
    """``stop_component(name)`` stops a control-plane component (cluster.sh stop-component) for one test; every
    component it stopped is started again (cluster.sh start-component) when the test ends, pass or fail, before the
    test's namespace is deleted."""
    stopped = []

    def _stop(name):
        stopped.append(name)  # noted first: a stop that fails half-way is still undone
        res = subprocess.run([str(CLUSTER_SH), "stop-component", name], check=False, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr

    yield _stop
    failures = []
    for name in reversed(stopped):
        res = subprocess.run([str(CLUSTER_SH), "start-component", name], check=False, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            failures.append(f"{name}: {res.stderr}")
    assert not failures, f"could not start again: {failures}"


def _first_missing_pod(cluster, namespace, name, replicas):
    return next((n for n in range(replicas) if get_pod(cluster, namespace, f"{name}-{n}") is None), None)


STALL = 5  # controller_stall_timeout of these tests, seconds


def _set_events(cluster, namespace, name, reason):
    """The namespace's events with ``reason`` about the StatefulSet ``name``."""
    res = cluster.get_json("events", "-n", namespace, "--field-selector",
                           f"involvedObject.kind=StatefulSet,involvedObject.name={name},reason={reason}")
    return res.get("items", [])


def _ready_since(pod) -> float | None:
    """When the pod's Ready condition last became True (epoch seconds), or None when it is not Ready."""
    for cond in (pod or {}).get("status", {}).get("conditions", []):
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return datetime.datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
    return None


def test_a_stopped_controller_manager_is_reported_naming_the_ordinal(cluster, namespace, tmp_path, stop_component):
    cluster.apply(sts_manifest("idle", replicas=3, delay="8s"), namespace)
    # Once the controller has observed the set, made pod 0 (Ready only after 8 s) and recorded that it did, stop it: the
    # next pod never comes. Its event recorder writes events after the pod, so without the last condition the stop can
    # lose the SuccessfulCreate event the report is asserted to carry.
    cluster.wait_for(lambda: get_pod(cluster, namespace, "idle-0")
                     and cluster.get_json("statefulset", "idle", "-n", namespace).get("status", {}).get("observedGeneration") == 1
                     and _set_events(cluster, namespace, "idle", "SuccessfulCreate"),
                     timeout=60, what="idle-0 created by the controller, and its event recorded")
    stop_component("kube-controller-manager")
    owed = _first_missing_pod(cluster, namespace, "idle", 3)  # 1, unless the machine was slow enough for pod 0 to be Ready
    assert owed is not None and owed >= 1, "the controller made every pod before it was stopped"
    started = time.time()
    res = run_module(cluster, tmp_path, name="idle", namespace=namespace, timeout=120, controller_stall_timeout=STALL)
    ended = time.time()

    assert res["_rc"] != 0 and res["reason"] == "ControllerStalled", res.get("msg")
    assert res["ordinal"] == owed and res["pod"] == f"idle-{owed}", res["msg"]
    stall = res["stall"]
    assert (stall["action"], stall["ordinal"], stall["threshold"]) == ("create", owed, STALL)
    assert STALL <= stall["seconds"] < STALL + 3, stall
    # The stall is reported the threshold after the last progress (pod 0 Ready, or the start of the wait if it was
    # Ready before), plus a margin: not at the 120 s timeout. Pod 0's readiness is kwok's, and late on a busy machine.
    ready_at = _ready_since(get_pod(cluster, namespace, "idle-0"))
    assert ready_at is not None, "idle-0 never Ready: the stall would then be pod 0's, not the controller's"
    assert ended - max(ready_at, started) < STALL + 15, (ended - max(ready_at, started), res["duration"])
    msg = res["msg"]
    for part in (f"StatefulSet {namespace}/idle: the StatefulSet controller has not acted for",
                 f"it has not created pod idle-{owed} (ordinal {owed}), although every ordinal below it is Ready",
                 f"waiting for ordinal {owed}", "is kube-controller-manager running?", "get events"):
        assert part in msg, (part, msg)
    assert any("SuccessfulCreate" in line for line in res["events"]), res["events"]


def test_a_stopped_controller_manager_leaves_a_scale_up_unobserved(cluster, namespace, tmp_path, stop_component):
    cluster.apply(sts_manifest("frozen", replicas=2), namespace)
    wait_pods_ready(cluster, namespace, ["frozen-0", "frozen-1"])
    cluster.wait_for(lambda: cluster.get_json("statefulset", "frozen", "-n", namespace).get("status", {}).get("readyReplicas") == 2,
                     timeout=60, what="the controller's status of frozen")
    stop_component("kube-controller-manager")
    cluster.apply(sts_manifest("frozen", replicas=3), namespace)  # generation 2, which nobody will observe
    res = run_module(cluster, tmp_path, name="frozen", namespace=namespace, timeout=120, controller_stall_timeout=STALL)

    assert res["_rc"] != 0 and res["reason"] == "ControllerStalled", res.get("msg")
    stall = res["stall"]
    assert (stall["action"], stall["generation"], stall["observed_generation"]) == ("observe", 2, 1), stall
    assert res["ordinal"] == 2 and res["pod"] == "frozen-2"  # what the wait was waiting for
    assert STALL <= res["duration"] < STALL + 15, res["duration"]
    assert "it has not observed generation 2 of the set (status.observedGeneration is 1)" in res["msg"]
    assert "2/3 ordinals Ready, waiting for ordinal 2" in res["msg"]
