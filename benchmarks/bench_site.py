"""Benchmark: the whole site playbook against its floor, on the local cluster, in one run.

For each run (--runs, default 3), into a namespace of its own:

  site first    ansible-playbook playbooks/site.yml into a new namespace (NFS directories, PVs, etcd, PXC, WordPress),
                every StatefulSet gated on its ordinals;
  site rerun    the same command again, nothing to change (its recap must say changed=0);
  floor first   the same objects, read back from the cluster after the site run and moved to another new
                namespace, applied with `kubectl apply --server-side` in the same order (namespace, volumes, then
                each component) and each component gated with `kubectl rollout status`, as the playbook gates it;
  floor rerun   the same applies and rollout checks again.

The pods become Ready after the same delays in both (the readiness delay annotations are part of the objects), so
the difference is what the playbook spends beyond applying and waiting. A warm-up run (not counted) starts the NFS
server first if it is not running. Every figure is a median with its min-max; ratios are site / floor. What the
benchmark made (its namespaces, the PersistentVolumes made for them, their NFS directories) is deleted at the end,
and an NFS server it started is stopped.

    python benchmarks/bench_site.py [--runs 3] [--collection DIR]

--collection runs another checkout of the collection (e.g. an export of an older commit) with this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KUBECONFIG = Path(os.environ.get("KUBECONFIG") or REPO / ".localcluster" / "kubeconfig")
BIN = Path(sys.executable).parent
MANAGED = "app.kubernetes.io/managed-by=kubess.stateful"
# The components in the order the site playbook deploys them, with the object their readiness is gated on.
COMPONENTS = (
    ("etcd", "app.kubernetes.io/name=etcd", "statefulset/etcd"),
    ("pxc", "app.kubernetes.io/name=percona-xtradb-cluster", "statefulset/pxc"),
    ("wordpress", "app.kubernetes.io/name=wordpress", "deployment/wordpress"),
)
NAMESPACED_KINDS = "secrets,configmaps,services,poddisruptionbudgets,statefulsets,deployments,horizontalpodautoscalers"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def log(msg: str) -> None:
    print(f"[bench-site {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(["kubectl", "--kubeconfig", str(KUBECONFIG), *args], input=stdin, text=True,
                          capture_output=True, check=False, timeout=600)
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def collection_env(collection: Path, workdir: Path) -> dict[str, str]:
    """An environment in which `collection` is importable as kubess.stateful."""
    root = workdir / "collections"
    link = root / "ansible_collections" / "kubess" / "stateful"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(collection.resolve())
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(root),
        "ANSIBLE_CONFIG": str(collection / "ansible.cfg"),
        "KUBECONFIG": str(KUBECONFIG),
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    })
    return env


def site(collection: Path, env: dict[str, str], namespace: str, log_file: Path) -> tuple[float, dict]:
    """Run the site playbook into `namespace`; return its wall time and its recap per host."""
    argv = [str(BIN / "ansible-playbook"), "-i", str(collection / "inventories" / "local" / "hosts.yml"),
            str(collection / "playbooks" / "site.yml"), "-e", f"kubess_namespace={namespace}"]
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, text=True, capture_output=True, check=False, timeout=1800)
    took = time.monotonic() - start
    log_file.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"site playbook into {namespace} failed (rc={proc.returncode}); see {log_file}")
    recap = {host: {"ok": int(ok), "changed": int(changed)} for host, ok, changed, _u, _f in RECAP.findall(proc.stdout)}
    return took, recap


def clean(obj: dict) -> dict:
    """The object as a manifest: what the user would have written, without what the server adds."""
    meta = obj["metadata"]
    out = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
           "metadata": {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if not k.startswith(("kubectl.kubernetes.io/", "deployment.kubernetes.io/", "pv.kubernetes.io/"))}
    if annotations:
        out["metadata"]["annotations"] = annotations
    for key in ("spec", "data", "type"):
        if key in obj:
            out[key] = obj[key]
    spec = out.get("spec") or {}
    if obj["kind"] == "Service" and spec.get("clusterIP") != "None":
        for key in ("clusterIP", "clusterIPs"):
            spec.pop(key, None)
    if obj["kind"] == "PersistentVolume":
        for key in ("uid", "resourceVersion"):
            (spec.get("claimRef") or {}).pop(key, None)
    for tmpl in spec.get("volumeClaimTemplates") or []:
        tmpl.pop("status", None)
    return out


def floor_manifests(source_ns: str, target_ns: str) -> list[tuple[str, str, str | None]]:
    """The objects the site run made in `source_ns`, moved to `target_ns`, in the order the playbook applies them:
    (what, manifest list as JSON, object to gate on)."""
    def items(*args: str) -> list[dict]:
        return [clean(o) for o in json.loads(kubectl("get", *args, "-o", "json"))["items"]]

    volumes = items("persistentvolumes", "-l", f"kubess.io/namespace={source_ns}")
    volumes += items("persistentvolumeclaims", "-n", source_ns, "-l", "kubess.io/shared-volume")
    groups = [("namespace", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": source_ns}}], None),
              ("volumes", volumes, None)]
    for name, selector, gate in COMPONENTS:
        groups.append((name, items(NAMESPACED_KINDS, "-n", source_ns, "-l", f"{selector},{MANAGED}"), gate))
    out = []
    for what, objs, gate in groups:
        text = json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}).replace(source_ns, target_ns)
        out.append((what, text, gate))
    return out


def floor(manifests: list[tuple[str, str, str | None]], namespace: str) -> float:
    start = time.monotonic()
    for _what, text, gate in manifests:
        kubectl("apply", "--server-side", "--field-manager=kubess-bench-floor", "-f", "-", stdin=text)
        if gate:
            kubectl("rollout", "status", "-n", namespace, gate, "--timeout=600s")
    return time.monotonic() - start


def cleanup(namespaces: list[str], export_root: Path) -> None:
    for ns in namespaces:
        kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=300s", check=False)
        kubectl("delete", "persistentvolumes", "-l", f"kubess.io/namespace={ns}", "--ignore-not-found", check=False)
        shutil.rmtree(export_root / ns, ignore_errors=True)


def ganesha_running(pid_file: Path) -> bool:
    try:
        pid = pid_file.read_text(encoding="utf-8").strip()
        return re.match(r"^\d+ \(ganesha\.nfsd\) [^ZX]", Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")) is not None
    except OSError:
        return False


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s [{min(values):.2f}-{max(values):.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--collection", type=Path, default=REPO, help="checkout of the collection to run")
    parser.add_argument("--export-root", type=Path, default=Path("/srv/kubess-nfs"),
                        help="the local inventory's NFS export root (the benchmark removes its namespaces' directories)")
    parser.add_argument("--pid-file", type=Path, default=Path("/run/ganesha/ganesha.pid"),
                        help="the local inventory's ganesha pid file")
    args = parser.parse_args()
    collection = args.collection.resolve()
    tag = f"{os.getpid()}"
    made: list[str] = []
    results: dict[str, list[float]] = {"site_first": [], "site_rerun": [], "floor_first": [], "floor_rerun": []}
    recaps = []
    nfs_was_running = ganesha_running(args.pid_file)
    with tempfile.TemporaryDirectory(prefix="kubess-bench-site-") as tmp:
        workdir = Path(tmp)
        env = collection_env(collection, workdir)
        try:
            warm = f"kubess-bench-{tag}-warm"
            made.append(warm)
            log(f"warm-up run into {warm} (not counted)")
            site(collection, env, warm, workdir / "warm.log")
            cleanup([warm], args.export_root)
            made.remove(warm)
            for run in range(args.runs):
                ns, floor_ns = f"kubess-bench-{tag}-{run}", f"kubess-bench-{tag}-{run}-floor"
                made += [ns, floor_ns]
                took, _recap = site(collection, env, ns, workdir / f"first-{run}.log")
                results["site_first"].append(took)
                took, recap = site(collection, env, ns, workdir / f"rerun-{run}.log")
                results["site_rerun"].append(took)
                recaps.append(recap)
                if any(host["changed"] for host in recap.values()):
                    raise SystemExit(f"the rerun into {ns} changed something: {recap}")
                manifests = floor_manifests(ns, floor_ns)
                results["floor_first"].append(floor(manifests, floor_ns))
                results["floor_rerun"].append(floor(manifests, floor_ns))
                log(f"run {run}: site {results['site_first'][-1]:.1f} s / rerun {results['site_rerun'][-1]:.1f} s; "
                    f"floor {results['floor_first'][-1]:.2f} s / {results['floor_rerun'][-1]:.2f} s")
                # The simulated nodes' CPU is finite: each run's stacks go before the next run.
                cleanup([ns, floor_ns], args.export_root)
                made = [m for m in made if m not in (ns, floor_ns)]
        finally:
            log(f"removing {', '.join(made)}")
            cleanup(made, args.export_root)
            if not nfs_was_running and ganesha_running(args.pid_file):
                subprocess.run([str(BIN / "ansible"), "-i", str(collection / "inventories" / "local" / "hosts.yml"),
                                "nfs_servers", "-m", "ansible.builtin.include_role",
                                "-a", "name=kubess.stateful.nfs_server tasks_from=stop"],
                               env=env, check=False, capture_output=True, timeout=300)
    tasks = {host: values["ok"] for host, values in recaps[-1].items()}
    first = statistics.median(results["site_first"]) / statistics.median(results["floor_first"])
    rerun = statistics.median(results["site_rerun"]) / statistics.median(results["floor_rerun"])
    print(f"\nWhole stack (NFS directories, PVs, etcd, PXC, WordPress), {args.runs} runs, medians [min-max]:")
    print(f"  {'':38} {'first run':>24} {'rerun':>24}")
    print(f"  {'site playbook':38} {spread(results['site_first']):>24} {spread(results['site_rerun']):>24}")
    print(f"  {'floor: kubectl apply + rollout status':38} {spread(results['floor_first']):>24} "
          f"{spread(results['floor_rerun']):>24}")
    print(f"  {'ratio site / floor':38} {first:>23.1f}x {rerun:>23.1f}x")
    print(f"  tasks per run (ok, rerun): {tasks}; rerun changed=0 on every host")
    print(json.dumps({"collection": str(collection), "runs": args.runs, "seconds": results, "tasks": tasks,
                      "ratio_first": round(first, 2), "ratio_rerun": round(rerun, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
