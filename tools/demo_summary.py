"""A summary of the deployed stack that a person can read at a glance.

    python tools/demo_summary.py [--namespace kubess]

For each StatefulSet: its ordinals and when each became Ready (and seconds after ordinal 0 did);
each PVC -> PV -> NFS server:path; the HorizontalPodAutoscalers' current and desired replicas.
Reads the cluster named by KUBECONFIG; changes nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime

from kubernetes import client, config


def _ts(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _ready_time(pod) -> datetime | None:
    for cond in pod.status.conditions or []:
        if cond.type == "Ready" and cond.status == "True":
            return _ts(cond.last_transition_time)
    return None


def statefulsets(apps, core, ns: str) -> list[str]:
    lines = []
    for sts in sorted(apps.list_namespaced_stateful_set(ns).items, key=lambda s: s.metadata.creation_timestamp):
        name = sts.metadata.name
        want = sts.spec.replicas or 0
        ready = sts.status.ready_replicas or 0
        lines.append(f"{name}: {ready}/{want} Ready  (podManagementPolicy {sts.spec.pod_management_policy})")
        pods = {}
        for pod in core.list_namespaced_pod(ns).items:
            m = re.fullmatch(rf"{re.escape(name)}-(\d+)", pod.metadata.name)
            if m and any(ref.kind == "StatefulSet" and ref.name == name for ref in pod.metadata.owner_references or []):
                pods[int(m.group(1))] = pod
        first = _ready_time(pods[0]) if 0 in pods else None
        for ordinal in range(want):
            pod = pods.get(ordinal)
            if pod is None:
                lines.append(f"  {name}-{ordinal}  not created")
                continue
            when = _ready_time(pod)
            if when is None:
                lines.append(f"  {name}-{ordinal}  NOT Ready ({pod.status.phase}) on {pod.spec.node_name or '-'}")
                continue
            after = f"+{(when - first).total_seconds():.0f}s" if first else ""
            lines.append(f"  {name}-{ordinal}  Ready at {when:%H:%M:%S} {after:>6}  on {pod.spec.node_name}")
    return lines or ["(no StatefulSet)"]


def volumes(core, ns: str) -> list[str]:
    pvs = {pv.metadata.name: pv for pv in core.list_persistent_volume().items}
    lines = []
    for pvc in sorted(core.list_namespaced_persistent_volume_claim(ns).items, key=lambda p: p.metadata.name):
        pv = pvs.get(pvc.spec.volume_name or "")
        where = "-"
        if pv is not None and pv.spec.nfs is not None:
            where = f"nfs://{pv.spec.nfs.server}{pv.spec.nfs.path}"
        elif pv is not None:
            where = "(not NFS)"
        modes = ",".join(pvc.spec.access_modes or [])
        lines.append(f"  {pvc.metadata.name:<24} {pvc.status.phase:<8} -> {pvc.spec.volume_name or '-':<32} -> {where}  [{modes}]")
    return lines or ["  (no PVC)"]


def _reads_metrics(hpa) -> bool:
    """The autoscaler has a current value for some resource metric (a new one has none for a minute or so)."""
    return any(m.resource is not None and m.resource.current is not None for m in hpa.status.current_metrics or [])


def autoscalers(ns: str) -> list[str]:
    hpa_api = client.AutoscalingV2Api()
    lines = []
    for hpa in hpa_api.list_namespaced_horizontal_pod_autoscaler(ns).items:
        cpu = "-"
        for metric in hpa.status.current_metrics or []:
            if metric.type == "Resource" and metric.resource and metric.resource.name == "cpu":
                cpu = f"{metric.resource.current.average_utilization}%"
        target = "-"
        for metric in hpa.spec.metrics or []:
            if metric.type == "Resource" and metric.resource.name == "cpu":
                target = f"{metric.resource.target.average_utilization}%"
        lines.append(
            f"  {hpa.metadata.name}: current {hpa.status.current_replicas} / desired {hpa.status.desired_replicas} replicas"
            f"  (min {hpa.spec.min_replicas}, max {hpa.spec.max_replicas}; CPU {cpu} of target {target})"
        )
    return lines or ["  (no HorizontalPodAutoscaler)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", "-n", default="kubess")
    parser.add_argument("--hpa-wait", type=float, default=90,
                        help="seconds to wait for the autoscalers' first metrics (a new HPA has none for a minute)")
    args = parser.parse_args()
    config.load_kube_config()
    core, apps = client.CoreV1Api(), client.AppsV1Api()
    ns = args.namespace
    deadline = time.monotonic() + args.hpa_wait
    hpas = client.AutoscalingV2Api().list_namespaced_horizontal_pod_autoscaler(ns).items
    while hpas and time.monotonic() < deadline and not all(_reads_metrics(h) for h in hpas):
        time.sleep(3)  # polling the HPA status until its first metrics, bounded by --hpa-wait
        hpas = client.AutoscalingV2Api().list_namespaced_horizontal_pod_autoscaler(ns).items
    print(f"== kubess.stateful in namespace {ns}")
    print("\n-- StatefulSets (ordinals, when each became Ready)")
    for line in statefulsets(apps, core, ns):
        print(line)
    for dep in apps.list_namespaced_deployment(ns).items:
        print(f"{dep.metadata.name} (Deployment): {dep.status.ready_replicas or 0}/{dep.spec.replicas} Ready")
    print("\n-- Volumes (PVC -> PV -> NFS)")
    for line in volumes(core, ns):
        print(line)
    print("\n-- Autoscaling")
    for line in autoscalers(ns):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
