"""The stack report: each StatefulSet's ordinals down to the NFS path of each claim, the Deployments and autoscalers,
and the members' own view of etcd and Galera, from API objects as the API server returns them."""

from __future__ import annotations

import json

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils import _stack
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure
from ansible_collections.kubess.stateful.plugins.module_utils._galera_state import SEPARATOR

NS = "kubess"
DOMAIN = "etcd.kubess.svc.cluster.local"
MANAGED = {"app.kubernetes.io/managed-by": "kubess.stateful"}


def sts(name, replicas, labels, template="data", update="r2", current="r1", env=(), partition=0, generation=3,
        observed=3):
    return {"metadata": {"name": name, "labels": dict(MANAGED, **labels), "generation": generation},
            "spec": {"replicas": replicas, "volumeClaimTemplates": [{"metadata": {"name": template}}],
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}},
                     "template": {"spec": {"containers": [{"name": name, "env": list(env)}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas - 1, "currentRevision": current,
                       "updateRevision": update, "observedGeneration": observed}}


def pod(name, node="node-a", ready_at="2026-12-03T06:00:00Z", revision="r2", restarts=0, waiting=None,
        phase="Running"):
    status = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready_at else "False", "lastTransitionTime": ready_at or "2026-12-03T05:00:00Z"}],
        "containerStatuses": [{"name": "c", "restartCount": restarts,
                               "state": {"waiting": {"reason": waiting}} if waiting else {"running": {}}}]}
    return {"metadata": {"name": name, "labels": {"controller-revision-hash": revision}},
            "spec": {"nodeName": node}, "status": status}


def claim(name, volume=None, phase="Bound"):
    return {"metadata": {"name": name},
            "spec": {"volumeName": volume or "", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": phase, "capacity": {"storage": "2Gi"}} if volume else {"phase": phase}}


def nfs_volume(name, path):
    return {"metadata": {"name": name},
            "spec": {"nfs": {"server": "10.0.0.5", "path": path}, "persistentVolumeReclaimPolicy": "Retain"}}


ETCD_ENV = [
    {"name": "ETCD_ADVERTISE_CLIENT_URLS", "value": f"https://$(POD_NAME).{DOMAIN}:2379"},
    {"name": "ETCD_INITIAL_ADVERTISE_PEER_URLS", "value": f"https://$(POD_NAME).{DOMAIN}:2380"},
]


def etcd_stack():
    sets = [sts("etcd", 3, {"app.kubernetes.io/name": "etcd"}, env=ETCD_ENV),
            sts("pxc", 3, {"app.kubernetes.io/name": "mariadb", "kubess.io/flavor": "mariadb"}, template="datadir",
                partition=2)]
    pods = [pod("etcd-0", revision="r1"), pod("etcd-1", node="node-b"), pod("etcd-2", ready_at=None, restarts=4,
                                                                            waiting="CrashLoopBackOff"),
            pod("pxc-0"), pod("pxc-1"), pod("pxc-2", ready_at=None, phase="Pending")]
    claims = [claim("data-etcd-0", "pv-etcd-0"), claim("data-etcd-1", "pv-etcd-1"), claim("data-etcd-2", "pv-etcd-2"),
              claim("data-etcd-3", "pv-etcd-3"),  # a removed member's, kept
              claim("datadir-pxc-0", "pv-pxc-0"), claim("datadir-pxc-1", "pv-other"), claim("datadir-pxc-2", phase="Pending")]
    volumes = [nfs_volume(f"pv-etcd-{n}", f"/srv/nfs/etcd-{n}") for n in range(4)] + [
        nfs_volume("pv-pxc-0", "/srv/nfs/pxc-0"), {"metadata": {"name": "pv-other"}, "spec": {"hostPath": {"path": "/x"}}}]
    return sets, pods, claims, volumes


def test_each_ordinal_has_its_pod_node_readiness_revision_and_claim_down_to_the_nfs_path():
    sets, pods, claims, volumes = etcd_stack()
    found = _stack.describe(sets, pods, claims, volumes, [], [])
    etcd = found["statefulsets"][0]
    assert (etcd["name"], etcd["kind"], etcd["replicas"], etcd["ready_replicas"]) == ("etcd", "etcd", 3, 2)
    assert (etcd["current_revision"], etcd["update_revision"], etcd["generation_observed"]) == ("r1", "r2", True)
    zero, one, two, three = etcd["ordinals"]
    assert zero["pod"] == "etcd-0" and zero["node"] == "node-a" and zero["ready"]
    assert zero["ready_since"] == "2026-12-03T06:00:00Z" and zero["revision"] == "r1" and not zero["updated"]
    assert one["node"] == "node-b" and one["updated"]
    assert zero["claims"] == [dict(name="data-etcd-0", phase="Bound", volume="pv-etcd-0", capacity="2Gi",
                                   nfs="10.0.0.5:/srv/nfs/etcd-0", reclaim_policy="Retain")]
    assert not two["ready"] and two["ready_since"] is None and two["restarts"] == 4
    assert two["waiting"] == "c: CrashLoopBackOff"
    # A removed member's kept claim is listed, outside the set, without a pod.
    assert three["ordinal"] == 3 and not three["in_set"] and three["pod"] is None
    assert three["claims"][0]["nfs"] == "10.0.0.5:/srv/nfs/etcd-3"


def test_galera_sets_are_known_by_their_flavour_and_claims_not_bound_say_so():
    sets, pods, claims, volumes = etcd_stack()
    pxc = _stack.describe(sets, pods, claims, volumes, [], [])["statefulsets"][1]
    assert (pxc["kind"], pxc["flavor"], pxc["partition"]) == ("galera", "mariadb", 2)
    assert [o["ordinal"] for o in pxc["ordinals"]] == [0, 1, 2]
    assert pxc["ordinals"][1]["claims"][0]["nfs"] is None  # not an NFS volume
    assert pxc["ordinals"][2]["claims"][0] == dict(name="datadir-pxc-2", phase="Pending", volume=None,
                                                   capacity="1Gi", nfs=None, reclaim_policy=None)
    assert pxc["ordinals"][2]["phase"] == "Pending"
    assert _stack.kind_of({"metadata": {"labels": {"app.kubernetes.io/name": "mysql"}}}) == "mysql"
    assert _stack.kind_of({"metadata": {"name": "x"}}) == "other"


def test_a_set_the_controller_has_not_seen_yet_is_reported_so():
    found = _stack.describe([sts("etcd", 1, {}, generation=4, observed=3)], [], [], [], [], [])
    assert found["statefulsets"][0]["generation_observed"] is False
    assert found["statefulsets"][0]["ordinals"][0]["pod"] is None


def test_autoscalers_report_replicas_and_cpu_utilisation_and_deployments_their_replicas():
    hpa = {"metadata": {"name": "wordpress"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "wordpress"}, "minReplicas": 5, "maxReplicas": 10,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 60}}}]},
           "status": {"currentReplicas": 5, "desiredReplicas": 7, "currentMetrics": [
               {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 85}}}]}}
    fresh = {"metadata": {"name": "new"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "new"},
                                                   "maxReplicas": 3}, "status": {}}
    dep = {"metadata": {"name": "wordpress"}, "spec": {"replicas": 7},
           "status": {"readyReplicas": 5, "updatedReplicas": 7}}
    found = _stack.describe([], [], [], [], [dep], [hpa, fresh])
    assert found["autoscalers"][1] == dict(name="wordpress", target="Deployment/wordpress", min_replicas=5,
                                           max_replicas=10, current_replicas=5, desired_replicas=7,
                                           cpu_utilization=dict(current=85, target=60))
    # Before metrics-server reports: no utilisation, not a zero.
    assert found["autoscalers"][0]["cpu_utilization"] == dict(current=None, target=None)
    assert found["deployments"] == [dict(name="wordpress", replicas=7, ready_replicas=5, updated_replicas=7)]


class StackApi:
    """Lists the objects by API path and answers etcdctl and the Galera members' published files through exec."""

    def __init__(self, objects, members=None, published=None, logs=None):
        self.objects, self.members, self.published, self.logs = objects, members or [], published or {}, logs or {}
        self.queries = []

    def text(self, path, query=(), timeout=30):
        self.queries.append((path, list(query)))
        if path in self.logs:
            return self.logs[path]
        raise ApiFailure(404, path)

    def list(self, path, query=(), timeout=30):
        self.queries.append((path, list(query)))
        for suffix, items in self.objects.items():
            if path.endswith(suffix):
                return {"items": items}
        raise ApiFailure(404, path)

    def exec_in_pod(self, namespace, pod, container, command, timeout=60):
        if command[0] == "etcdctl":
            args = command[3:]
            if args[:2] == ["member", "list"]:
                return 0, json.dumps({"members": self.members}), ""
            if args[:2] == ["endpoint", "health"]:
                return 1, json.dumps([{"endpoint": f"https://etcd-{n}.{DOMAIN}:2379", "health": n != 2}
                                      for n in range(3)]), ""
            if args[:2] == ["endpoint", "status"]:
                return 0, json.dumps([{"Endpoint": "x", "Status": {"leader": 1001}}]), ""
            raise AssertionError(args)
        assert container == "pxc" and command == _stack.MEMBER_COMMAND
        if pod not in self.published:
            raise ApiFailure(400, f"container not found ({pod})")
        return 0, self.published[pod], ""


def stack_api():
    sets, pods, claims, volumes = etcd_stack()
    members = [dict(ID=1000 + n, name=f"etcd-{n}", peerURLs=[f"https://etcd-{n}.{DOMAIN}:2380"], isLearner=False)
               for n in range(3)]
    status = ("wsrep_local_state_comment\tSynced\nwsrep_cluster_status\tPrimary\nwsrep_cluster_size\t2\n"
              "wsrep_cluster_state_uuid\tc-1\nwsrep_last_committed\t57\nwsrep_ready\tON\n")
    published = {"pxc-0": f"server\nordinal=0 empty=0 uuid=u-1 seqno=-1 safe_to_bootstrap=0\n{SEPARATOR}\n{status}",
                 # Its server does not answer: what its entrypoint published only.
                 "pxc-1": f"waiting\nordinal=1 empty=0 uuid=u-1 seqno=42 safe_to_bootstrap=1\n{SEPARATOR}\n"}
    return StackApi({"/statefulsets": sets, "/pods": pods, "/persistentvolumeclaims": claims,
                     "/persistentvolumes": volumes, "/deployments": [], "/horizontalpodautoscalers": [],
                     "/cronjobs": [], "/jobs": []},
                    members, published)


def test_collect_reads_the_roles_objects_and_asks_the_members_when_told():
    api = stack_api()
    found = _stack.collect(api, NS, [], True, deadline=1e12)
    assert ("/apis/apps/v1/namespaces/kubess/statefulsets",
            [("labelSelector", "app.kubernetes.io/managed-by=kubess.stateful")]) in api.queries
    etcd, pxc = found["statefulsets"]
    assert etcd["etcd"]["members"] == [
        dict(name="etcd-0", id=format(1000, "x"), learner=False, started=True, healthy=True, leader=False),
        dict(name="etcd-1", id=format(1001, "x"), learner=False, started=True, healthy=True, leader=True),
        dict(name="etcd-2", id=format(1002, "x"), learner=False, started=True, healthy=False, leader=False)]
    zero, one, two = pxc["galera"]["members"]
    # The server's own status and live position, over what the entrypoint published when it started.
    assert zero == dict(name="pxc-0", state="Synced", cluster_status="Primary", cluster_size=2, uuid="c-1", seqno=57,
                        phase="server", safe_to_bootstrap=False, error=None)
    # A server that does not answer: no state; the published phase and position.
    assert one == dict(name="pxc-1", state=None, cluster_status=None, cluster_size=None, uuid="u-1", seqno=42,
                       phase="waiting", safe_to_bootstrap=True, error=None)
    assert two["state"] is None and two["error"] == "the pod is Pending"


def test_without_members_nothing_is_executed_and_names_choose_the_sets():
    api = stack_api()
    api.exec_in_pod = None  # any exec would fail
    found = _stack.collect(api, NS, ["pxc"], False, deadline=1e12)
    assert [s["name"] for s in found["statefulsets"]] == ["pxc"]
    assert "etcd" not in found["statefulsets"][0] and "galera" not in found["statefulsets"][0]


def test_a_member_that_cannot_be_asked_is_reported_not_fatal():
    api = stack_api()
    api.published.pop("pxc-1")
    pxc = _stack.collect(api, NS, ["pxc"], True, deadline=1e12)["statefulsets"][0]
    member = pxc["galera"]["members"][1]
    assert "container not found (pxc-1)" in member["error"] and member["state"] is None and member["uuid"] is None


@pytest.mark.parametrize("env", [[], [{"name": "ETCD_ADVERTISE_CLIENT_URLS", "value": "https://10.0.0.1:2379"}]])
def test_an_etcd_set_not_made_by_the_role_is_reported_without_asking(env):
    found = _stack.etcd_members(None, NS, sts("etcd", 3, {}, env=env), deadline=1e12)
    assert found == dict(error="the etcd container's advertised URLs are not the etcd role's")


def hpa(name, current=None):
    status = {"currentReplicas": 5, "desiredReplicas": 5}
    if current is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu",
                                                                      "current": {"averageUtilization": current}}}]
    return {"metadata": {"name": name}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": name}}, "status": status}


def test_autoscalers_without_a_reading_are_watched_until_they_have_one_or_the_deadline(monkeypatch):
    watched = []
    answers = {"late": (True, hpa("late", 40)), "never": (False, hpa("never")), "gone": (True, None)}

    def watch_one(api, key, path, name, deadline, done, clock=None):
        watched.append((name, deadline))
        assert done(answers["late"][1]) and not done(hpa("x")) and done(None)
        return answers[name]

    monkeypatch.setattr(_stack, "watch_one", watch_one)
    got = _stack.autoscalers_with_readings(None, "/hpas", [hpa("read", 10), hpa("late"), hpa("never"), hpa("gone")], 7.0)
    assert watched == [("late", 7.0), ("never", 7.0), ("gone", 7.0)]  # one with a reading is not watched
    assert [(_stack.describe_autoscaler(h)["name"], _stack.describe_autoscaler(h)["cpu_utilization"]["current"])
            for h in got] == [("read", 10), ("late", 40), ("never", None)]


def test_a_members_output_is_split_into_what_it_published_and_what_its_server_says():
    from ansible_collections.kubess.stateful.plugins.module_utils._galera_state import parse_member
    text = (f"server\nordinal=2 empty=1 uuid=0 seqno=-1 safe_to_bootstrap=0\n{SEPARATOR}\n"
            "WSREP_LOCAL_STATE_COMMENT\tDonor/Desynced\nwsrep_other\tx\nwsrep_cluster_size\t3\n")
    phase, published, status = parse_member(text)
    assert phase == "server" and published == dict(empty=True, uuid="0", seqno=-1, safe_to_bootstrap=False)
    assert status == {"wsrep_local_state_comment": "Donor/Desynced", "wsrep_cluster_size": "3"}
    # Nothing published yet, nothing answered (or an exec that printed nothing at all).
    assert parse_member(f"{SEPARATOR}\n") == ("", None, {}) and parse_member("") == ("", None, {})


# --- Backups ----------------------------------------------------------------------------------------------------

BACKUP_LABELS = dict(MANAGED, **{"app.kubernetes.io/name": "etcd-backup", "app.kubernetes.io/instance": "etcd",
                                 "app.kubernetes.io/component": "backup"})


def backup_job(name, started, outcome, file=None):
    status = {"startTime": started}
    if outcome == "succeeded":
        status.update(succeeded=1, completionTime=started[:-3] + "30Z")
    elif outcome == "failed":
        status["failed"] = 1
    meta = {"name": name, "labels": BACKUP_LABELS, "creationTimestamp": started}
    if file:
        meta["annotations"] = {"kubess.io/backup-file": file}
    return {"metadata": meta, "status": status}


def job_pod(job):
    return {"metadata": {"name": job + "-x7k2p", "labels": {"batch.kubernetes.io/job-name": job}},
            "spec": {}, "status": {"phase": "Succeeded"}}


CRON = {"metadata": {"name": "etcd-backup", "labels": BACKUP_LABELS},
        "spec": {"schedule": "0 3 * * *", "timeZone": "Etc/UTC"},
        "status": {"lastScheduleTime": "2026-12-03T03:00:00Z", "lastSuccessfulTime": "2026-12-03T03:00:41Z"}}


def test_backups_of_a_set_the_cronjob_the_last_job_and_the_last_that_succeeded():
    jobs = [backup_job("etcd-backup-29412180", "2026-12-03T03:00:00Z", "succeeded"),
            backup_job("etcd-backup-1796292900", "2026-12-03T10:15:00Z", "succeeded", "kubess_etcd-20261203T101500Z.db"),
            backup_job("etcd-backup-1796293000", "2026-12-03T10:16:40Z", "failed"),
            # Another set's: not this one's.
            dict(backup_job("other-backup-1", "2026-12-03T11:00:00Z", "succeeded"),
                 metadata={"name": "other-backup-1", "labels": dict(BACKUP_LABELS, **{"app.kubernetes.io/instance": "other"})})]
    found = _stack.describe([sts("etcd", 3, {"app.kubernetes.io/name": "etcd"}, env=ETCD_ENV)],
                            [job_pod("etcd-backup-29412180")], [], [], [], [], [CRON], jobs)
    backup = found["statefulsets"][0]["backup"]
    assert backup["cronjob"] == "etcd-backup" and backup["schedule"] == "0 3 * * *"
    assert backup["time_zone"] == "Etc/UTC" and backup["suspended"] is False
    assert backup["last_successful"] == "2026-12-03T03:00:41Z"
    assert backup["last"] == dict(job="etcd-backup-1796293000", started="2026-12-03T10:16:40Z", completed=None,
                                  outcome="failed", file=None, pod=None)
    assert backup["last_succeeded"] == dict(job="etcd-backup-1796292900", started="2026-12-03T10:15:00Z",
                                            completed="2026-12-03T10:15:30Z", outcome="succeeded",
                                            file="kubess_etcd-20261203T101500Z.db", pod=None)


def test_a_set_without_backups_has_none():
    found = _stack.describe([sts("pxc", 3, {"app.kubernetes.io/name": "mariadb"})], [], [], [], [], [], [CRON], [])
    assert found["statefulsets"][0]["backup"] is None


def test_a_scheduled_backups_file_is_read_from_its_store_containers_log():
    api = stack_api()
    job = backup_job("etcd-backup-29412180", "2026-12-03T03:00:00Z", "succeeded")
    api.objects["/cronjobs"], api.objects["/jobs"] = [CRON], [job]
    api.objects["/pods"] = api.objects["/pods"] + [job_pod("etcd-backup-29412180")]
    log = "/api/v1/namespaces/kubess/pods/etcd-backup-29412180-x7k2p/log"
    api.logs[log] = "stored kubess_etcd-20261203T030003Z.db\ndeleted kubess_etcd-20261126T030002Z.db\n"
    etcd = _stack.collect(api, NS, ["etcd"], False, deadline=1e12)["statefulsets"][0]
    assert etcd["backup"]["last_succeeded"]["file"] == "kubess_etcd-20261203T030003Z.db"
    assert (log, [("container", "store")]) in api.queries
    # Its log gone (or unreadable): the file is not known, and the report does not fail.
    del api.logs[log]
    etcd = _stack.collect(api, NS, ["etcd"], False, deadline=1e12)["statefulsets"][0]
    assert etcd["backup"]["last_succeeded"]["file"] is None


def archived_pod(name, ready=True, restarts=0):
    """A Galera member's pod with the pxc role's binlog-archive container beside the member."""
    member = pod(name)
    member["spec"]["containers"] = [{"name": "pxc"}, {"name": "binlog-archive"}]
    member["status"]["containerStatuses"].append({"name": "binlog-archive", "ready": ready, "restartCount": restarts})
    return member


def test_each_members_binary_log_archive_says_what_it_copies_from_its_log():
    sets = [sts("pxc", 2, {"app.kubernetes.io/name": "mariadb"}, template="datadir")]
    api = StackApi({"/statefulsets": sets, "/pods": [archived_pod("pxc-0"), archived_pod("pxc-1", False, 3)],
                    "/persistentvolumeclaims": [], "/persistentvolumes": [], "/deployments": [],
                    "/horizontalpodautoscalers": [], "/cronjobs": [], "/jobs": []})
    log = "/api/v1/namespaces/kubess/pods/pxc-0/log"
    api.logs[log] = ("[pxc-binlog-archive] archiving the binary log of 127.0.0.1:3306 from binlog.000002 into "
                     "/backup/binlogs/kubess-pxc/pxc-0/20261204T071000Z\n"
                     "[pxc-binlog-archive] mariadb-binlog stopped (exit code 1)\n"
                     "[pxc-binlog-archive] archiving the binary log of 127.0.0.1:3306 from binlog.000003 into "
                     "/backup/binlogs/kubess-pxc/pxc-0/20261204T071000Z\n")
    found = _stack.collect(api, NS, ["pxc"], False, deadline=1e12)["statefulsets"][0]["binlog_archive"]
    assert found == [
        dict(pod="pxc-0", ready=True, restarts=0, file="binlog.000003",
             directory="/backup/binlogs/kubess-pxc/pxc-0/20261204T071000Z",
             last_line="[pxc-binlog-archive] archiving the binary log of 127.0.0.1:3306 from binlog.000003 into "
                       "/backup/binlogs/kubess-pxc/pxc-0/20261204T071000Z"),
        # Its log cannot be read: what the pod says only.
        dict(pod="pxc-1", ready=False, restarts=3, file=None, directory=None, last_line=None)]
    assert (log, [("container", "binlog-archive"), ("tailLines", "200")]) in api.queries
    # Stopped since, and failing to start again: it copies nothing, whatever it copied before.
    api.logs[log] += ("[pxc-binlog-archive] mariadb-binlog stopped (exit code 1)\n"
                      "[pxc-binlog-archive] cannot list the binary logs of 127.0.0.1:3306 as 'mariabackup': refused\n")
    found = _stack.collect(api, NS, ["pxc"], False, deadline=1e12)["statefulsets"][0]["binlog_archive"][0]
    assert (found["file"], found["directory"]) == (None, None)
    assert found["last_line"].endswith("as 'mariabackup': refused")


def test_a_set_without_the_archive_has_none():
    assert _stack.collect(stack_api(), NS, ["etcd"], False, deadline=1e12)["statefulsets"][0]["binlog_archive"] is None
