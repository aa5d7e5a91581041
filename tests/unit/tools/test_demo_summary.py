"""The demo's summary and picture, from a stack_info report: each pod inside its node, each claim to its volume's
NFS path, an autoscaler to what it scales."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
import demo_summary  # noqa: E402 pylint: disable=wrong-import-position


def claim(name, nfs="10.0.0.5:/srv/kubess/" + "x", phase="Bound"):
    return dict(name=name, phase=phase, volume="pv-" + name if phase == "Bound" else None, capacity="1Gi", nfs=nfs,
                reclaim_policy="Retain")


def ordinal(n, node, ready, pod=True, in_set=True):
    return dict(ordinal=n, pod=f"etcd-{n}" if pod else None, phase="Running" if pod else None, node=node, ready=ready,
                ready_since=f"2026-12-03T06:00:0{n}Z" if ready else None, revision="r1", updated=n != 1, restarts=0,
                waiting=None if ready else "etcd: CrashLoopBackOff", in_set=in_set,
                claims=[claim(f"data-etcd-{n}", f"10.0.0.5:/srv/kubess/etcd-{n}")])


REPORT = dict(
    statefulsets=[dict(name="etcd", kind="etcd", flavor=None, replicas=3, ready_replicas=2, current_revision="r0",
                       update_revision="r1", partition=0, pod_management_policy="OrderedReady",
                       generation_observed=True,
                       ordinals=[ordinal(0, "n1", True), ordinal(1, "n2", True), ordinal(2, "n1", False),
                                 ordinal(3, None, False, pod=False, in_set=False)],
                       etcd=dict(members=[dict(name="etcd-0", id="a", learner=False, started=True, healthy=True,
                                               leader=True)]),
                       galera=dict(members=[
                           dict(name="pxc-0", state="Synced", cluster_status="Primary", cluster_size=3, uuid="c-1",
                                seqno=57, phase="server", safe_to_bootstrap=False, error=None),
                           dict(name="pxc-1", state=None, cluster_status=None, cluster_size=None, uuid="u-1", seqno=42,
                                phase="waiting", safe_to_bootstrap=True, error=None)]))],
    deployments=[dict(name="wordpress", replicas=5, ready_replicas=4, updated_replicas=5)],
    autoscalers=[dict(name="wordpress", target="Deployment/wordpress", min_replicas=5, max_replicas=10,
                      current_replicas=5, desired_replicas=7, cpu_utilization=dict(current=None, target=60))],
)


def test_the_text_names_each_ordinal_its_state_and_each_claims_nfs_path():
    lines = demo_summary.text(REPORT)
    assert "etcd (etcd): 2/3 Ready, OrderedReady, revision r1" in lines
    assert any(line.startswith("  etcd-1 ") and "+1s  on n2  (old revision)" in line for line in lines), lines
    assert any(line.startswith("  etcd-2 ") and "NOT Ready (etcd: CrashLoopBackOff) on n1" in line for line in lines)
    assert any("etcd-3" in line and "above the set: claim kept" in line for line in lines)
    assert "  etcd member etcd-0 a: leader, healthy" in lines
    assert "  galera member pxc-0: Synced, Primary component of 3; uuid c-1 seqno 57" in lines
    assert "  galera member pxc-1: server not answering (phase waiting); uuid u-1 seqno 42" in lines
    assert any("data-etcd-3" in line and line.endswith("-> 10.0.0.5:/srv/kubess/etcd-3") for line in lines)
    assert any("current 5 / desired 7 replicas (min 5, max 10; CPU - of target 60%)" in line for line in lines)


def test_the_picture_puts_pods_in_their_node_and_claims_on_their_nfs_paths():
    graph = demo_summary.dot(REPORT)
    node_n1 = graph[graph.index('label="node n1"'):]
    node_n1 = node_n1[:node_n1.index("  }")]
    assert '"pod:etcd-0"' in node_n1 and '"pod:etcd-2"' in node_n1 and '"pod:etcd-1"' not in node_n1
    assert 'fillcolor=lightsalmon' in graph and '"pod:etcd-3"' not in graph  # no pod, claim kept
    assert '"pod:etcd-0" -> "pvc:data-etcd-0";' in graph
    assert '"pvc:data-etcd-3" -> "nfs:10.0.0.5/srv/kubess/etcd-3";' in graph
    assert '"hpa:wordpress" -> "Deployment/wordpress"' in graph and '"Deployment/wordpress" [label=' in graph
    assert graph.count("{") == graph.count("}")


def test_the_text_says_the_backups_of_a_set():
    job = dict(job="etcd-backup-1", started="2026-12-03T03:00:00Z", completed="2026-12-03T03:00:31Z",
               outcome="succeeded", file="kubess_etcd-20261203T030001Z.db", pod=None)
    backup = dict(cronjob="etcd-backup", schedule="0 3 * * *", time_zone="Etc/UTC", suspended=False,
                  last_schedule=None, last_successful=None, last=dict(job, job="etcd-backup-2", outcome="failed"),
                  last_succeeded=job)
    report = dict(REPORT, statefulsets=[dict(REPORT["statefulsets"][0], backup=backup)])
    assert ("  backups every 0 3 * * * (Etc/UTC); last snapshot kubess_etcd-20261203T030001Z.db at "
            "2026-12-03T03:00:31Z; the newest Job failed: etcd-backup-2") in demo_summary.text(report)
    on_demand = dict(backup, cronjob=None, last=None, last_succeeded=None)
    report = dict(REPORT, statefulsets=[dict(REPORT["statefulsets"][0], backup=on_demand)])
    assert "  backups on demand only; no snapshot yet" in demo_summary.text(report)
    assert not any(line.startswith("  backups") for line in demo_summary.text(REPORT))


def test_the_text_says_what_each_members_binary_log_archive_copies():
    archive = [dict(pod="pxc-0", ready=True, restarts=0, file="binlog.000003",
                    directory="/backup/binlogs/kubess-pxc/pxc-0/20261204T071000Z", last_line="..."),
               dict(pod="pxc-1", ready=False, restarts=2, file=None, directory=None,
                    last_line="[pxc-binlog-archive] cannot list the binary logs of 127.0.0.1:3306")]
    report = dict(REPORT, statefulsets=[dict(REPORT["statefulsets"][0], binlog_archive=archive)])
    lines = demo_summary.text(report)
    assert ("  binlog archive of pxc-0: Ready; copying from binlog.000003 on, into "
            "/backup/binlogs/kubess-pxc/pxc-0/20261204T071000Z") in lines
    assert ("  binlog archive of pxc-1: NOT Ready, 2 restarts; not copying: [pxc-binlog-archive] cannot list the "
            "binary logs of 127.0.0.1:3306") in lines
    assert not any("binlog archive" in line for line in demo_summary.text(REPORT))
