# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The state of a deployed stack, as people and playbooks read it: each StatefulSet's ordinals (pod, node, Ready and
since when, revision, claim -> volume -> NFS path), its backups and binary log archive, the Deployments and
HorizontalPodAutoscalers, and, when asked, each etcd and Galera member as the member itself sees it. Reads only."""

import json
import re

from ansible_collections.kubess.stateful.plugins.module_utils._etcd_members import EtcdMembers
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import (
    ApiFailure,
    ModuleFailure,
    TransientApiError,
)
from ansible_collections.kubess.stateful.plugins.module_utils._galera_state import MEMBER_COMMAND, parse_member, to_int
from ansible_collections.kubess.stateful.plugins.module_utils._watch import ns_path, retry, watch_one

# Every object the collection's roles write carries this label.
MANAGED = "app.kubernetes.io/managed-by=kubess.stateful"
NAME_LABEL = "app.kubernetes.io/name"
FLAVOR_LABEL = "kubess.io/flavor"
REVISION_LABEL = "controller-revision-hash"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# The snapshot a backup Job taken on demand writes (the etcd role's templates/backup.yaml.j2); a scheduled one says
# it in its store container's log.
BACKUP_FILE_ANNOTATION = "kubess.io/backup-file"
STORED = re.compile(r"^stored (\S+)$", re.M)
# The pxc role's binlog-archive container (pxc_backup_binlogs) and the line it logs when it starts copying a file.
ARCHIVE_CONTAINER = "binlog-archive"
ARCHIVING = re.compile(r"^\[pxc-binlog-archive\] archiving the binary log of \S+ from (\S+) into (\S+)$", re.M)
# <scheme>://$(POD_NAME).<domain>:<port>, as the etcd role writes the members' advertised URLs.
ADVERTISED = re.compile(r"^(https?)://\$\(POD_NAME\)\.([^:/]+):(\d+)$")


def _meta(obj):
    return obj.get("metadata") or {}


def _labels(obj):
    return _meta(obj).get("labels") or {}


def kind_of(sts):
    """What the StatefulSet runs, from the labels the roles set: etcd, galera (with its flavour), mysql, or other."""
    labels = _labels(sts)
    if labels.get(FLAVOR_LABEL):
        return "galera"
    if labels.get(NAME_LABEL) in ("etcd", "mysql"):
        return labels[NAME_LABEL]
    return "other"


def ready_since(pod):
    """The time the pod last became Ready, or None when it is not Ready."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("lastTransitionTime") if cond.get("status") == "True" else None
    return None


def _waiting(pod):
    """The first container waiting, as '<container>: <reason>', or None."""
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            return "{0}: {1}".format(container.get("name"), waiting.get("reason") or "waiting")
    return None


def _claim(name, claims, volumes):
    claim = claims.get(name)
    if claim is None:
        return dict(name=name, phase=None, volume=None, capacity=None, nfs=None, reclaim_policy=None)
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    volume = volumes.get(spec.get("volumeName") or "") or {}
    vspec = volume.get("spec") or {}
    nfs = vspec.get("nfs")
    return dict(name=name, phase=status.get("phase"), volume=spec.get("volumeName") or None,
                capacity=(status.get("capacity") or {}).get("storage") or ((spec.get("resources") or {}).get(
                    "requests") or {}).get("storage"),
                nfs="{0}:{1}".format(nfs.get("server"), nfs.get("path")) if nfs else None,
                reclaim_policy=vspec.get("persistentVolumeReclaimPolicy"))


def describe_set(sts, pods, claims, volumes):
    """One StatefulSet and its ordinals. ``pods``, ``claims``, ``volumes``: by name. Ordinals above the set's size
    that still have a pod or a claim (a member removed, its claim kept) are listed too."""
    name = _meta(sts)["name"]
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    replicas = int(spec.get("replicas") or 0)
    templates = [_meta(t).get("name") for t in spec.get("volumeClaimTemplates") or []]
    seen = set()
    for prefix, names in [(name, pods)] + [("{0}-{1}".format(t, name), claims) for t in templates]:
        pattern = re.compile("^" + re.escape(prefix) + r"-(\d+)$")
        seen.update(int(m.group(1)) for m in (pattern.match(n) for n in names) if m)
    update_revision = status.get("updateRevision")
    ordinals = []
    for ordinal in sorted(seen | set(range(replicas))):
        pod_name = "{0}-{1}".format(name, ordinal)
        pod = pods.get(pod_name)
        entry = dict(ordinal=ordinal, pod=None, phase=None, node=None, ready=False, ready_since=None, revision=None,
                     updated=False, restarts=0, waiting=None, in_set=ordinal < replicas,
                     claims=[_claim("{0}-{1}".format(t, pod_name), claims, volumes) for t in templates])
        if pod is not None:
            pstatus = pod.get("status") or {}
            revision = _labels(pod).get(REVISION_LABEL)
            entry.update(pod=pod_name, phase=pstatus.get("phase"), node=(pod.get("spec") or {}).get("nodeName"),
                         ready_since=ready_since(pod), revision=revision,
                         updated=bool(revision) and revision == update_revision,
                         restarts=sum(int(c.get("restartCount") or 0) for c in pstatus.get("containerStatuses") or []),
                         waiting=_waiting(pod))
            entry["ready"] = entry["ready_since"] is not None
        ordinals.append(entry)
    strategy = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
    return dict(name=name, kind=kind_of(sts), flavor=_labels(sts).get(FLAVOR_LABEL), replicas=replicas,
                ready_replicas=int(status.get("readyReplicas") or 0),
                current_revision=status.get("currentRevision"), update_revision=update_revision,
                partition=int(strategy.get("partition") or 0),
                pod_management_policy=spec.get("podManagementPolicy") or "OrderedReady",
                generation_observed=int(status.get("observedGeneration") or 0) >= int(_meta(sts).get("generation") or 0),
                ordinals=ordinals)


def describe_deployment(dep):
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    return dict(name=_meta(dep)["name"], replicas=int(spec.get("replicas") or 0),
                ready_replicas=int(status.get("readyReplicas") or 0),
                updated_replicas=int(status.get("updatedReplicas") or 0))


def describe_autoscaler(hpa):
    """An autoscaling/v2 HorizontalPodAutoscaler: its target, bounds, replicas and CPU utilisation (percent of the
    pods' requests: the target and the current average, None before metrics-server has reported)."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    target = current = None
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target = (resource.get("target") or {}).get("averageUtilization")
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            current = (resource.get("current") or {}).get("averageUtilization")
    return dict(name=_meta(hpa)["name"], target="{0}/{1}".format(ref.get("kind"), ref.get("name")),
                min_replicas=int(spec.get("minReplicas") or 1), max_replicas=int(spec.get("maxReplicas") or 0),
                current_replicas=int(status.get("currentReplicas") or 0),
                desired_replicas=int(status.get("desiredReplicas") or 0),
                cpu_utilization=dict(current=current, target=target))


def _is_backup_of(obj, set_name):
    labels = _labels(obj)
    return (labels.get(INSTANCE_LABEL) == set_name and labels.get(COMPONENT_LABEL) == "backup"
            and (labels.get(NAME_LABEL) or "").endswith("-backup"))


def _backup_job(job, pods):
    status = job.get("status") or {}
    name = _meta(job)["name"]
    outcome = "succeeded" if status.get("succeeded") else "failed" if status.get("failed") else "running"
    pod = next((p for p in pods.values() if _labels(p).get(JOB_NAME_LABEL) == name), None)
    return dict(job=name, started=status.get("startTime"), completed=status.get("completionTime"), outcome=outcome,
                file=(_meta(job).get("annotations") or {}).get(BACKUP_FILE_ANNOTATION),
                pod=_meta(pod)["name"] if pod else None)


def describe_backup(set_name, cronjobs, jobs, pods):
    """The backups of one StatefulSet (the objects its role labels ``component: backup``): the CronJob's schedule and
    times, the newest backup Job and the newest that succeeded (its snapshot's name when known); None when the set
    has neither a CronJob nor a backup Job."""
    crons = [c for c in cronjobs if _is_backup_of(c, set_name)]
    ours = sorted((j for j in jobs if _is_backup_of(j, set_name)),
                  key=lambda j: ((j.get("status") or {}).get("startTime") or _meta(j).get("creationTimestamp") or ""))
    if not crons and not ours:
        return None
    cron = crons[0] if crons else {}
    cspec, cstatus = cron.get("spec") or {}, cron.get("status") or {}
    described = [_backup_job(j, pods) for j in ours]
    succeeded = [j for j in described if j["outcome"] == "succeeded"]
    return dict(cronjob=_meta(cron).get("name"), schedule=cspec.get("schedule"), time_zone=cspec.get("timeZone"),
                suspended=bool(cspec.get("suspend")), last_schedule=cstatus.get("lastScheduleTime"),
                last_successful=cstatus.get("lastSuccessfulTime"),
                last=described[-1] if described else None, last_succeeded=succeeded[-1] if succeeded else None)


def describe_archive(described, pods):
    """Each member's binlog-archive container (the pxc role's pxc_backup_binlogs): pod, Ready, restarts, and the
    file and directory it copies (from its log: null here); None when no pod of the set has one."""
    out = []
    for entry in described["ordinals"]:
        pod = pods.get(entry["pod"]) if entry["pod"] else None
        containers = ((pod or {}).get("spec") or {}).get("containers") or []
        if not any(c.get("name") == ARCHIVE_CONTAINER for c in containers):
            continue
        status = next((c for c in (pod.get("status") or {}).get("containerStatuses") or []
                       if c.get("name") == ARCHIVE_CONTAINER), {})
        out.append(dict(pod=entry["pod"], ready=bool(status.get("ready")), restarts=int(status.get("restartCount") or 0),
                        file=None, directory=None, last_line=None))
    return out or None


def archive_progress(api, namespace, member, deadline):
    """``member`` (from describe_archive) with its last log line and, when that line says it started copying (it
    logs nothing more while it copies; anything after it is a stop or a failure), the file it started from and the
    directory; left as it is when the log cannot be read."""
    path = ns_path("v1", namespace, "pods") + "/{0}/log".format(member["pod"])
    try:
        text = retry(lambda: api.text(path, [("container", ARCHIVE_CONTAINER), ("tailLines", "200")]), deadline)
    except (TransientApiError, ApiFailure):
        return member
    lines = (text or "").strip().splitlines()
    member["last_line"] = lines[-1] if lines else None
    copying = ARCHIVING.match(member["last_line"] or "")
    if copying:
        member.update(file=copying.group(1), directory=copying.group(2))
    return member


def describe(sets, pods, claims, volumes, deployments, autoscalers, cronjobs=(), jobs=()):
    """The stack from the objects read (each a list of API objects)."""
    pods = {_meta(p)["name"]: p for p in pods}
    claims = {_meta(c)["name"]: c for c in claims}
    volumes = {_meta(v)["name"]: v for v in volumes}
    described = [describe_set(s, pods, claims, volumes) for s in sorted(sets, key=lambda s: _meta(s)["name"])]
    for entry in described:
        entry["backup"] = describe_backup(entry["name"], cronjobs, jobs, pods)
        entry["binlog_archive"] = describe_archive(entry, pods)
    return dict(
        statefulsets=described,
        deployments=[describe_deployment(d) for d in sorted(deployments, key=lambda d: _meta(d)["name"])],
        autoscalers=[describe_autoscaler(h) for h in sorted(autoscalers, key=lambda h: _meta(h)["name"])],
    )


def stored_file(api, namespace, pod, deadline, container="store"):
    """The snapshot a scheduled backup's store container says it stored (its log), or None when it cannot be read."""
    path = ns_path("v1", namespace, "pods") + "/{0}/log".format(pod)
    try:
        text = retry(lambda: api.text(path, [("container", container)]), deadline)
    except (TransientApiError, ApiFailure):
        return None
    found = STORED.findall(text or "")
    return found[-1] if found else None


def etcd_endpoints(sts):
    """(scheme, domain, client port, peer port, container) from the etcd container's advertised URLs, or None when
    the set was not written by the etcd role."""
    for container in ((sts.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        client = ADVERTISED.match(env.get("ETCD_ADVERTISE_CLIENT_URLS") or "")
        peer = ADVERTISED.match(env.get("ETCD_INITIAL_ADVERTISE_PEER_URLS") or "")
        if client and peer:
            return client.group(1), peer.group(2), int(client.group(3)), int(peer.group(3)), container.get("name")
    return None


def etcd_members(api, namespace, sts, deadline):
    """Each member as etcd lists it (name, id, learner, healthy, leader), or a dict with ``error``."""
    found = etcd_endpoints(sts)
    if found is None:
        return dict(error="the etcd container's advertised URLs are not the etcd role's")
    scheme, domain, client_port, peer_port, container = found
    members = EtcdMembers(api, _meta(sts)["name"], namespace, scheme, client_port, peer_port, domain, container,
                          deadline)
    try:
        listed = members.members()
        healthy = members.healthy(listed)
        _code, out, _err = members.etcdctl("endpoint", "status", "--cluster", "-w", "json")
        leader = None
        for status in json.loads(out or "[]"):
            leader = leader or (status.get("Status") or {}).get("leader")
    except (ModuleFailure, TransientApiError, ApiFailure, ValueError) as err:
        return dict(error=str(err))
    return dict(members=[dict(name="{0}-{1}".format(_meta(sts)["name"], m["ordinal"]), id=m["hex"],
                              learner=m["learner"], started=m["started"], healthy=m["ordinal"] in healthy,
                              leader=leader is not None and m["id"] == int(leader)) for m in listed])


def galera_members(api, namespace, described, deadline, container="pxc"):
    """Each Galera member as its server reports itself (wsrep_local_state_comment, cluster status and size, and its
    position: the cluster's uuid and its last committed seqno), over the monitor user as the readiness probe connects;
    a member whose server does not answer (waiting to bootstrap, initialising) is reported by the phase and the
    position its entrypoint published (roles/pxc/files/pxc-entrypoint.sh), with ``state`` null."""
    out = []
    for entry in described["ordinals"]:
        if not entry["in_set"]:
            continue
        member = dict(name="{0}-{1}".format(described["name"], entry["ordinal"]), state=None, cluster_status=None,
                      cluster_size=None, uuid=None, seqno=None, phase=None, safe_to_bootstrap=None, error=None)
        if entry["phase"] != "Running":
            member["error"] = "the pod is {0}".format(entry["phase"] or "missing")
            out.append(member)
            continue
        try:
            _code, text, _err = retry(lambda e=entry: api.exec_in_pod(namespace, e["pod"], container, MEMBER_COMMAND,
                                                                      timeout=30), deadline)
        except (TransientApiError, ApiFailure) as err:
            member["error"] = str(err)
            text = ""
        phase, published, status = parse_member(text)
        member["phase"] = phase or None
        if published:
            member.update(uuid=published["uuid"], seqno=published["seqno"],
                          safe_to_bootstrap=published["safe_to_bootstrap"])
        if status:
            member.update(state=status.get("wsrep_local_state_comment"),
                          cluster_status=status.get("wsrep_cluster_status"),
                          cluster_size=to_int(status.get("wsrep_cluster_size")),
                          uuid=status.get("wsrep_cluster_state_uuid") or member["uuid"],
                          seqno=to_int(status.get("wsrep_last_committed"), member["seqno"]))
        out.append(member)
    return dict(members=out)


def _has_cpu_reading(hpa):
    return describe_autoscaler(hpa)["cpu_utilization"]["current"] is not None


def autoscalers_with_readings(api, path, hpas, deadline):
    """``hpas``, each watched until it has a CPU reading (a new autoscaler has none for about a minute) or until
    ``deadline``; one still without a reading then is returned as it is."""
    out = []
    for hpa in hpas:
        if not _has_cpu_reading(hpa):
            done, seen = watch_one(api, "horizontalpodautoscaler " + _meta(hpa)["name"], path, _meta(hpa)["name"],
                                   deadline, lambda obj: obj is None or _has_cpu_reading(obj))
            if done and seen is None:
                continue  # deleted meanwhile
            hpa = seen or hpa
        out.append(hpa)
    return out


def collect(api, namespace, names, members, deadline, metrics_deadline=None):
    """Read the stack in ``namespace`` (the StatefulSets named, or every one the roles made) and describe it; with
    ``metrics_deadline``, wait until then for the autoscalers' first CPU reading."""
    def items(path, selector=None):
        query = [("labelSelector", selector)] if selector else []
        return retry(lambda: api.list(path, query), deadline).get("items") or []

    sets = items(ns_path("apps/v1", namespace, "statefulsets"), None if names else MANAGED)
    if names:
        sets = [s for s in sets if _meta(s).get("name") in names]
    hpa_path = ns_path("autoscaling/v2", namespace, "horizontalpodautoscalers")
    hpas = items(hpa_path, MANAGED)
    if metrics_deadline is not None:
        hpas = autoscalers_with_readings(api, hpa_path, hpas, min(metrics_deadline, deadline))
    found = describe(sets, items(ns_path("v1", namespace, "pods")),
                     items(ns_path("v1", namespace, "persistentvolumeclaims")), items(ns_path("v1", None, "persistentvolumes")),
                     items(ns_path("apps/v1", namespace, "deployments"), MANAGED), hpas,
                     items(ns_path("batch/v1", namespace, "cronjobs"), MANAGED),
                     items(ns_path("batch/v1", namespace, "jobs"), MANAGED))
    for described in found["statefulsets"]:
        last = (described["backup"] or {}).get("last_succeeded")
        if last and not last["file"] and last["pod"]:
            last["file"] = stored_file(api, namespace, last["pod"], deadline)
        for member in described["binlog_archive"] or []:
            archive_progress(api, namespace, member, deadline)
    if members:
        by_name = {_meta(s)["name"]: s for s in sets}
        for described in found["statefulsets"]:
            if described["kind"] == "etcd":
                described["etcd"] = etcd_members(api, namespace, by_name[described["name"]], deadline)
            elif described["kind"] == "galera":
                described["galera"] = galera_members(api, namespace, described, deadline)
    return found
