"""Benchmark: kubess.stateful.statefulset_wait against its peers, on the local cluster, in one run.

Waiters compared, each on fresh, identical StatefulSets, one after the other (so that the API audit log can
tell their requests apart by time window):

  module   kubess.stateful.statefulset_wait          (ansible-playbook, one task)
  k8s      kubernetes.core.k8s state=present wait=true, default wait settings, same manifest (ansible-playbook)
  kubectl  kubectl rollout status statefulset/<name>

Measured:

  notice latency   wall time from the moment the set's last ordinal is Ready, as seen by an independent watch
                   this script runs, to the moment the waiter's process has exited;
  startup          the waiter's wall time on a set that is already Ready (its fixed cost: interpreter, ansible,
                   client set-up, first read, exit), so that latency is read knowing what each waiter costs anyway;
  API requests     requests each waiter made in its time window, from the audit log (namespaced ones in the bench
                   namespace, plus discovery; control-plane components and this script's own requests, which carry
                   the user agent "kubess-bench", are left out);
  module cost      CPU time and peak RSS of the module process alone (run directly, os.wait4 rusage), waiting on a
                   1000-replica Parallel set and a 100-replica OrderedReady set with a 100 ms readiness delay.

Every figure is a median over --runs runs (default 5) with its min-max spread; ratios are peer / module.
Results are also written as JSON to benchmarks/results/. Run with `make bench` (the cluster must be up).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".localcluster"
KUBECONFIG = Path(os.environ.get("KUBECONFIG") or STATE / "kubeconfig")
AUDIT_LOG = STATE / "audit.log"
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("KUBESS_CACHE_DIR", Path.home() / ".cache" / "kubess-stateful"))
COLL_ROOT = Path(os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep)[0] or
                 CACHE / "collections" / hashlib.sha256(str(REPO).encode()).hexdigest()[:12])
BENCH_UA = "kubess-bench/1"
DELAY_ANNOTATION = "pod-ready.stage.kwok.x-k8s.io/delay"
CONTROL_PLANE_UAS = ("kube-controller-manager", "kube-scheduler", "kube-apiserver", "kwok", "metrics-server", BENCH_UA)
WAITERS = ("module", "k8s", "kubectl")

# Readiness as the module judges it, from the collection itself (importable through the collection link).
if str(COLL_ROOT) not in sys.path:
    sys.path.insert(0, str(COLL_ROOT))
from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import pod_ready  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- cluster access (this script's own)


def api():
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(KUBECONFIG), client_configuration=configuration)
    api_client = client.ApiClient(configuration)
    api_client.user_agent = BENCH_UA
    return client.CoreV1Api(api_client), client.AppsV1Api(api_client)


def sts_body(name: str, replicas: int, delay: str | None, policy: str = "OrderedReady", bench_node: str | None = None) -> dict:
    pod_spec: dict = {"containers": [{"name": "app", "image": "registry.invalid/kubess/bench:1"}]}
    if bench_node:
        pod_spec["nodeSelector"] = {"kubernetes.io/hostname": bench_node}
        pod_spec["tolerations"] = [{"key": "kubess.io/bench", "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {DELAY_ANNOTATION: delay} if delay else {}},
                "spec": pod_spec,
            },
        },
    }


class ReadyWatch(threading.Thread):
    """Independent watch on the bench namespace's pods: wall-clock time each pod (by uid) was first seen Ready."""

    def __init__(self, core, namespace: str):
        super().__init__(daemon=True)
        self.core, self.namespace = core, namespace
        self.ready_at: dict[str, tuple[str, float]] = {}  # pod name -> (uid, time)
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.stopped = False

    def run(self):
        rv = None
        while not self.stopped:
            try:
                if rv is None:
                    listing = self.core.list_namespaced_pod(self.namespace, _preload_content=False)
                    body = json.loads(listing.data)
                    now = time.time()
                    for pod in body.get("items") or []:
                        self._see(pod, now)
                    rv = body["metadata"]["resourceVersion"]
                    self.synced.set()
                # Raw JSON lines, as the module reads them: no model objects, so this watch keeps up with 1000 pods.
                resp = self.core.list_namespaced_pod(self.namespace, watch=True, resource_version=rv, timeout_seconds=300,
                                                     allow_watch_bookmarks=True, _preload_content=False)
                buf = b""
                for chunk in resp.stream(amt=None, decode_content=False):
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if not line.strip():
                            continue
                        now = time.time()
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            rv = None if obj.get("code") == 410 else rv
                            raise RuntimeError(obj.get("message"))
                        rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            self._see(obj, now)
                    if self.stopped:
                        return
            except Exception:  # noqa: BLE001 - a benchmark watch: watch again (or list again after 410) on any error
                time.sleep(0.2)  # backoff before watching again

    def _see(self, pod: dict, now: float):
        name, uid = pod["metadata"]["name"], pod["metadata"].get("uid")
        with self.lock:
            if pod_ready(pod):
                if name not in self.ready_at or self.ready_at[name][0] != uid:
                    self.ready_at[name] = (uid, now)
            elif name in self.ready_at and self.ready_at[name][0] == uid:
                del self.ready_at[name]

    def last_ready(self, names: list[str]) -> float | None:
        with self.lock:
            if not all(n in self.ready_at for n in names):
                return None
            return max(self.ready_at[n][1] for n in names)

    def wait_all_ready(self, names: list[str], timeout: float) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.last_ready(names)
            if t is not None:
                return t
            time.sleep(0.05)  # polling this process's own in-memory watch state, with a deadline
        raise RuntimeError(f"pods {names[:3]}... not all Ready after {timeout}s")


# --------------------------------------------------------------------------- audit log


class Audit:
    """Reads the audit log incrementally; counts a waiter's requests in a time window."""

    def __init__(self, path: Path, namespace: str):
        self.path, self.namespace = path, namespace
        self.offset = path.stat().st_size
        self.events: dict[str, dict] = {}  # auditID -> event (ResponseComplete wins over ResponseStarted)

    def _read(self):
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self.offset)
            for line in fh:
                if not line.endswith("\n"):
                    break
                self.offset += len(line.encode("utf-8"))
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                ns = (ev.get("objectRef") or {}).get("namespace")
                if ns not in (None, self.namespace):
                    continue
                if ev.get("stage") in ("ResponseStarted", "ResponseComplete"):
                    if ev["auditID"] not in self.events or ev["stage"] == "ResponseComplete":
                        self.events[ev["auditID"]] = ev

    def flush(self, core, timeout: float = 30):
        """Make a marker request and read the log until it shows up: every earlier request is in then."""
        marker_at = time.time()
        core.read_namespace(self.namespace)
        deadline = time.time() + timeout
        while time.time() < deadline:
            self._read()
            for ev in self.events.values():
                if ev.get("userAgent") == BENCH_UA and ev.get("verb") == "get" \
                        and (ev.get("objectRef") or {}).get("resource") == "namespaces" and _ts(ev) >= marker_at - 0.01:
                    return
            time.sleep(0.1)  # waiting for the apiserver's audit writer, with a deadline
        raise RuntimeError("the audit log did not show the marker request")

    def count(self, start: float, end: float, ua_prefix: str) -> dict:
        namespaced = discovery = 0
        verbs: dict[str, int] = {}
        for ev in self.events.values():
            ua = ev.get("userAgent", "")
            if not start <= _ts(ev) <= end or ua.startswith(CONTROL_PLANE_UAS) or not ua.startswith(ua_prefix):
                continue
            if (ev.get("objectRef") or {}).get("namespace") == self.namespace:
                namespaced += 1
                verbs[ev["verb"]] = verbs.get(ev["verb"], 0) + 1
            elif not ev.get("objectRef") or ev.get("verb") == "get" and not (ev.get("objectRef") or {}).get("name"):
                discovery += 1
        return {"namespaced": namespaced, "discovery": discovery, "verbs": verbs}


def _ts(ev: dict) -> float:
    return datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- waiters


def _ansible_env() -> dict:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLL_ROOT),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        KUBECONFIG=str(KUBECONFIG),
        PATH=f"{BIN}:{env.get('PATH', '')}",
    )
    return env


def waiter_command(kind: str, name: str, namespace: str, workdir: Path, timeout: int = 300) -> list[str]:
    if kind == "kubectl":
        return ["kubectl", "--kubeconfig", str(KUBECONFIG), "rollout", "status", f"statefulset/{name}",
                "-n", namespace, f"--timeout={timeout}s"]
    if kind == "module":
        task = {"kubess.stateful.statefulset_wait": {"name": name, "namespace": namespace, "timeout": timeout}}
    else:
        body = sts_body(name, 0, None)  # replaced below with the set's real manifest
        task = {"kubernetes.core.k8s": {"state": "present", "namespace": namespace, "definition": body, "wait": True,
                                        "wait_timeout": timeout}}
    playbook = workdir / f"{kind}-{name}.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]), encoding="utf-8")
    return [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)]


def set_k8s_definition(cmd: list[str], body: dict) -> None:
    playbook = Path(cmd[-1])
    play = json.loads(playbook.read_text(encoding="utf-8"))
    play[0]["tasks"][0]["kubernetes.core.k8s"]["definition"] = body
    playbook.write_text(json.dumps(play), encoding="utf-8")


def run_waiter(cmd: list[str]) -> dict:
    """Run a waiter to its end: start/end wall times, exit code, and its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.time()
        proc = subprocess.Popen(cmd, env=_ansible_env(), stdout=out, stderr=err)
        _pid, status, _ru = os.wait4(proc.pid, 0)
        end = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"start": start, "end": end, "rc": proc.returncode, "stdout": out.read().decode(), "stderr": err.read().decode()}


def ua_prefix(kind: str) -> str:
    return "kubectl" if kind == "kubectl" else "OpenAPI-Generator"


# --------------------------------------------------------------------------- scenarios


def latency_runs(core, apps, audit: Audit, watch: ReadyWatch, namespace: str, workdir: Path, runs: int,
                 replicas: int, delay: str, prefix: str = "lat") -> dict:
    """Per waiter and run: a fresh set, the waiter started at once, latency from the set's last Ready to its exit."""
    out: dict[str, list[dict]] = {k: [] for k in WAITERS}
    for i in range(runs):
        for kind in WAITERS:
            name = f"{prefix}-{kind}-{i}"
            body = sts_body(name, replicas, delay)
            cmd = waiter_command(kind, name, namespace, workdir)
            if kind == "k8s":
                set_k8s_definition(cmd, body)
            apps.create_namespaced_stateful_set(namespace, body)
            res = run_waiter(cmd)
            pods = [f"{name}-{n}" for n in range(replicas)]
            last = watch.wait_all_ready(pods, timeout=300)
            audit.flush(core)
            reqs = audit.count(res["start"], res["end"], ua_prefix(kind))
            first_request = min((_ts(e) for e in audit.events.values()
                                 if res["start"] <= _ts(e) <= res["end"] and e.get("userAgent", "").startswith(ua_prefix(kind))
                                 and not e.get("userAgent", "").startswith(CONTROL_PLANE_UAS)), default=None)
            run = {
                "run": i, "rc": res["rc"], "latency": res["end"] - last, "wall": res["end"] - res["start"],
                "requests": reqs["namespaced"] + reqs["discovery"], "requests_detail": reqs,
                # A fair run has the waiter asking the API before the last ordinal became Ready.
                "waited": first_request is not None and first_request < last,
            }
            if kind == "module" and res["rc"] == 0:
                result = json.loads(res["stdout"])["plays"][0]["tasks"][0]["hosts"]["localhost"]
                run["module_duration"] = result["duration"]
                run["module_api_requests"] = result["api_requests"]
                run["module_notice"] = result["duration"] - max(o["ready_seconds"] for o in result["ordinals"])
            if res["rc"] != 0:
                run["error"] = (res["stdout"][-800:] + res["stderr"][-800:]).strip()
            out[kind].append(run)
            log(f"{prefix} {kind:8s} run {i}: rc={res['rc']} latency={run['latency']:.2f}s wall={run['wall']:.2f}s "
                f"requests={run['requests']} waited={run['waited']}")
    return out


def startup_runs(core, audit: Audit, namespace: str, workdir: Path, runs: int, names: dict[str, str], apps) -> dict:
    """Each waiter's wall time and requests on a set that is already Ready."""
    out: dict[str, list[dict]] = {k: [] for k in WAITERS}
    for i in range(runs):
        for kind in WAITERS:
            name = names[kind]
            cmd = waiter_command(kind, name, namespace, workdir)
            if kind == "k8s":
                live = apps.read_namespaced_stateful_set(name, namespace, _preload_content=False)
                set_k8s_definition(cmd, sts_body(name, json.loads(live.data)["spec"]["replicas"],
                                                 json.loads(live.data)["spec"]["template"]["metadata"]["annotations"].get(DELAY_ANNOTATION)))
            res = run_waiter(cmd)
            audit.flush(core)
            reqs = audit.count(res["start"], res["end"], ua_prefix(kind))
            out[kind].append({"run": i, "rc": res["rc"], "wall": res["end"] - res["start"],
                              "requests": reqs["namespaced"] + reqs["discovery"]})
            log(f"startup {kind:8s} run {i}: rc={res['rc']} wall={res['end'] - res['start']:.2f}s requests={out[kind][-1]['requests']}")
    return out


def module_cost(core, apps, audit: Audit, watch: ReadyWatch, namespace: str, workdir: Path, name: str, body: dict,
                pods: list[str], timeout: int) -> dict:
    """Run the module file directly (no ansible around it) on a set created just before; its own CPU and peak RSS."""
    args = workdir / f"args-{name}.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"name": name, "namespace": namespace, "timeout": timeout}}),
                    encoding="utf-8")
    env = _ansible_env()
    env["PYTHONPATH"] = str(COLL_ROOT)
    apps.create_namespaced_stateful_set(namespace, body)
    with tempfile.TemporaryFile() as out:
        start = time.time()
        proc = subprocess.Popen([sys.executable, str(REPO / "plugins" / "modules" / "statefulset_wait.py"), str(args)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, ru = os.wait4(proc.pid, 0)
        end = time.time()
        out.seek(0)
        text = out.read().decode()
    try:
        result = json.loads(text[text.index("{"):])
    except ValueError:
        result = {"failed": True, "msg": text[-1000:]}
    last = watch.last_ready(pods)
    audit.flush(core)
    reqs = audit.count(start, end, "OpenAPI-Generator")
    ready_seconds = [o.get("ready_seconds") for o in result.get("ordinals") or []]
    notice = result["duration"] - max(ready_seconds) if ready_seconds and None not in ready_seconds else None
    return {
        "rc": os.waitstatus_to_exitcode(status), "failed": bool(result.get("failed")), "msg": result.get("msg"),
        "module_notice": notice,
        "wall": end - start, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "system": ru.ru_stime,
        "peak_rss_mib": ru.ru_maxrss / 1024.0, "latency": (end - last) if last else None,
        "module_duration": result.get("duration"), "api_requests": result.get("api_requests"),
        "audit_requests": reqs["namespaced"] + reqs["discovery"], "replicas": result.get("replicas"),
    }


def add_bench_node(core, name: str, pods: int) -> None:
    """A kwok node of our own, tainted so nothing else lands on it, big enough for the 1000-replica set."""
    core.create_node({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok",
                                "kubess.io/bench": "true"}},
        "spec": {"podCIDR": "10.250.0.0/20", "taints": [{"key": "kubess.io/bench", "value": "true", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": str(pods)},
                   "capacity": {"cpu": "64", "memory": "256Gi", "pods": str(pods)}},
    })


# --------------------------------------------------------------------------- report


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else (None, None)


def fmt(v, unit="s", digits=2):
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def report(results: dict) -> str:
    lines = []
    lat, start = results["latency"], results["startup"]
    lines.append(f"StatefulSet wait benchmark ({results['runs']} runs each; {results['replicas']} replicas OrderedReady, "
                 f"readiness delay {results['delay']} per pod; medians, [min-max])")
    lines.append("")
    header = f"{'waiter':8s} | {'notice latency':>22s} | {'startup on Ready set':>22s} | {'API requests (wait)':>20s} | {'API requests (Ready)':>20s} | ok"
    lines.append(header)
    lines.append("-" * len(header))
    for kind in WAITERS:
        runs = lat[kind]
        lo, hi = spread([r["latency"] for r in runs])
        slo, shi = spread([r["wall"] for r in start[kind]])
        rlo, rhi = spread([r["requests"] for r in runs])
        ok = sum(1 for r in runs if r["rc"] == 0 and r["waited"])
        lines.append(
            f"{kind:8s} | {fmt(med([r['latency'] for r in runs])):>8s} [{fmt(lo)}-{fmt(hi)}] | "
            f"{fmt(med([r['wall'] for r in start[kind]])):>8s} [{fmt(slo)}-{fmt(shi)}] | "
            f"{fmt(med([r['requests'] for r in runs]), '', 0):>6s} [{fmt(rlo, '', 0)}-{fmt(rhi, '', 0)}]    | "
            f"{fmt(med([r['requests'] for r in start[kind]]), '', 0):>20s} | {ok}/{len(runs)}"
        )
    lines.append("")
    m_lat = med([r["latency"] for r in lat["module"]])
    m_req = med([r["requests"] for r in lat["module"]])
    for peer in ("k8s", "kubectl"):
        p_lat = med([r["latency"] for r in lat[peer]])
        p_req = med([r["requests"] for r in lat[peer]])
        lines.append(
            f"{peer} / module: notice latency x{(p_lat / m_lat) if m_lat and p_lat else float('nan'):.2f}, "
            f"API requests x{(p_req / m_req) if m_req and p_req is not None else float('nan'):.2f}"
        )
    mod = lat["module"]
    lines.append(
        "module, by its own clock: returned {0} after it saw the last ordinal Ready (median); "
        "its own count of API requests {1} (median; the audit counts above include API discovery)".format(
            fmt(med([r.get("module_notice") for r in mod]), "s", 3), fmt(med([r.get("module_api_requests") for r in mod]), "", 0))
    )
    if results.get("long"):
        lines.append("")
        lines.append(f"One longer wait ({results['replicas']} replicas x {results['long_delay']}): does the request count grow "
                     "with the length of the wait?")
        for kind in WAITERS:
            run = results["long"][kind][0]
            lines.append(f"  {kind:8s} wall {fmt(run['wall'])}, notice latency {fmt(run['latency'])}, API requests "
                         f"{run['requests']} {run['requests_detail']['verbs']}{'' if run['rc'] == 0 else ' FAILED'}")
    lines.append("")
    lines.append(f"{'module cost (run directly)':32s} | {'wall':>8s} | {'CPU':>8s} | {'peak RSS':>10s} | "
                 f"{'latency':>8s} | {'own':>7s} | {'requests':>8s} | result")
    for label, cost in results["cost"].items():
        lines.append(
            f"{label:32s} | {fmt(cost['wall']):>8s} | {fmt(cost['cpu']):>8s} | {fmt(cost['peak_rss_mib'], ' MiB', 1):>10s} | "
            f"{fmt(cost['latency']):>8s} | {fmt(cost['module_notice'], 's', 3):>7s} | {cost['audit_requests']!s:>8s} | "
            f"{'ok' if not cost['failed'] else 'FAILED: ' + str(cost['msg'])[:120]}"
        )
    lines.append("  latency: last Ready seen by the benchmark's watch -> module exit; own: the module's duration minus its "
                 "last ready_seconds; requests: audit log, module process only")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--delay", default="1500ms", help="readiness delay per pod in the latency runs")
    parser.add_argument("--long-delay", default="10s", help="readiness delay per pod of the one longer wait ('' to skip)")
    parser.add_argument("--big", type=int, default=1000, help="replicas of the Parallel set for the module's cost (0: skip)")
    parser.add_argument("--ordered", type=int, default=100, help="replicas of the OrderedReady set for the module's cost (0: skip)")
    parser.add_argument("--keep", action="store_true", help="keep the namespace and the bench node")
    opts = parser.parse_args()

    status = subprocess.run([str(REPO / "tools" / "localcluster" / "cluster.sh"), "status"], check=False, capture_output=True, text=True)
    if status.returncode != 0:
        print("the local cluster is not running: start it with `make cluster-up`", file=sys.stderr)
        return 2
    core, apps = api()
    tag = uuid.uuid4().hex[:6]
    namespace = f"sw-bench-{tag}"
    bench_node = f"sw-bench-{tag}-node"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    node_added = False
    results: dict = {"runs": opts.runs, "replicas": opts.replicas, "delay": opts.delay, "namespace": namespace}
    try:
        with tempfile.TemporaryDirectory(prefix="kubess-bench-") as tmp:
            workdir = Path(tmp)
            watch = ReadyWatch(core, namespace)
            watch.start()
            if not watch.synced.wait(30):
                raise RuntimeError("the benchmark's own pod watch did not start")
            audit = Audit(AUDIT_LOG, namespace)
            log(f"namespace {namespace}: notice latency, {opts.runs} runs x {len(WAITERS)} waiters")
            results["latency"] = latency_runs(core, apps, audit, watch, namespace, workdir, opts.runs, opts.replicas, opts.delay)
            log("startup cost on already-Ready sets")
            ready_sets = {k: f"lat-{k}-0" for k in WAITERS}
            results["startup"] = startup_runs(core, audit, namespace, workdir, opts.runs, ready_sets, apps)
            if opts.long_delay:
                log(f"one longer wait per waiter: {opts.replicas} replicas x {opts.long_delay}")
                results["long"] = latency_runs(core, apps, audit, watch, namespace, workdir, 1, opts.replicas,
                                               opts.long_delay, prefix="long")
                results["long_delay"] = opts.long_delay
            results["cost"] = {}
            if opts.ordered:
                log(f"module cost: {opts.ordered} replicas OrderedReady, 100ms readiness delay")
                name = "cost-ordered"
                results["cost"][f"{opts.ordered} OrderedReady, 100ms"] = module_cost(
                    core, apps, audit, watch, namespace, workdir, name, sts_body(name, opts.ordered, "100ms"),
                    [f"{name}-{n}" for n in range(opts.ordered)], timeout=600)
            if opts.big:
                log(f"module cost: {opts.big} replicas Parallel, on node {bench_node}")
                add_bench_node(core, bench_node, opts.big + 50)
                node_added = True
                name = "cost-parallel"
                results["cost"][f"{opts.big} Parallel"] = module_cost(
                    core, apps, audit, watch, namespace, workdir, name,
                    sts_body(name, opts.big, None, policy="Parallel", bench_node=bench_node),
                    [f"{name}-{n}" for n in range(opts.big)], timeout=600)
            watch.stopped = True
    finally:
        if not opts.keep:
            core.delete_namespace(namespace, propagation_policy="Background")
            if node_added:
                # The node goes once its pods are gone (the namespace deletion removes them).
                deadline = time.time() + 120
                while time.time() < deadline:
                    left = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={bench_node}", limit=1)
                    if not left.items:
                        break
                    time.sleep(1)  # waiting for the namespace's pods to go, with a deadline
                core.delete_node(bench_node)
    text = report(results)
    print(text)
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"bench_wait-{stamp}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out_dir / f"bench_wait-{stamp}.txt").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
