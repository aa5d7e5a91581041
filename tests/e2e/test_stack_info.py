"""kubess.stateful.stack_info on the running stack, members asked in their containers: etcd's member list with one
leader, every Galera member Synced in one cluster, each claim's NFS path a directory on the NFS server, the
autoscaler's CPU reading; reads only. Then the demo's summary and picture are made from the report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

from conftest import OUTPUT, REPO, run_site

sys.path.insert(0, str(REPO / "molecule" / "shared"))
from audit_writes import writes  # noqa: E402 pylint: disable=wrong-import-position

PLAYBOOK = REPO / "playbooks" / "stack_info.yml"


def test_stack_info_reports_each_member_as_it_sees_itself_and_writes_nothing(stack):
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0")
    report_file = OUTPUT / "stack-info.json"
    since = time.time()
    extra = {"kubess_stack_info_members": True, "kubess_stack_info_file": str(report_file)}
    run = run_site(env, "stack-info", "-e", json.dumps(extra), playbook=PLAYBOOK)
    assert run.returncode == 0, run.tail()
    with open(stack.node.cluster.audit_log, encoding="utf-8") as log:
        # Asking the members execs in their pods (a create of pods/exec); nothing else is sent.
        assert [w for w in writes(log, since) if not w["uri"].split("?")[0].endswith("/exec")] == []
    report = json.loads(report_file.read_text())
    sets = {s["name"]: s for s in report["statefulsets"]}
    assert {"etcd", "pxc", "mysql"} <= set(sets), sorted(sets)

    etcd = sets["etcd"]["etcd"]["members"]
    assert sorted(m["name"] for m in etcd) == ["etcd-0", "etcd-1", "etcd-2"], etcd
    assert all(m["healthy"] and m["started"] and not m["learner"] for m in etcd), etcd
    assert sum(m["leader"] for m in etcd) == 1, etcd

    galera = sets["pxc"]["galera"]["members"]
    assert [m["state"] for m in galera] == ["Synced"] * 3 and [m["phase"] for m in galera] == ["server"] * 3, galera
    assert [(m["cluster_status"], m["cluster_size"]) for m in galera] == [("Primary", 3)] * 3, galera
    # One cluster, its live position: not the empty position a first member published when it started.
    assert len({m["uuid"] for m in galera}) == 1 and galera[0]["uuid"].strip("0-"), galera
    assert all(m["seqno"] > 0 for m in galera), galera

    for sts in sets.values():
        for entry in sts["ordinals"]:
            if entry["in_set"]:
                assert entry["node"] == stack.node.name and entry["ready"], (sts["name"], entry)
                pod = stack.get("pod", entry["pod"])
                assert entry["revision"] == pod["metadata"]["labels"]["controller-revision-hash"]
            else:  # a member removed earlier (the membership test): no pod, its claim kept
                assert entry["pod"] is None and sts["name"] == "etcd", (sts["name"], entry)
            for claim in entry["claims"]:
                _server, path = claim["nfs"].split(":", 1)
                assert claim["phase"] == "Bound" and Path(path).is_dir(), claim

    hpa = next(h for h in report["autoscalers"] if h["target"] == "Deployment/wordpress")
    assert isinstance(hpa["cpu_utilization"]["current"], int) and hpa["current_replicas"] >= 1, hpa

    # The demo's summary and picture, from this report.
    svg, graph = OUTPUT / "stack.svg", OUTPUT / "stack.dot"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "demo_summary.py"), str(report_file),
                           "--dot", str(graph), "--svg", str(svg)], capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "etcd member etcd-" in done.stdout and ": leader, healthy" in done.stdout, done.stdout
    assert "galera member pxc-2: Synced, Primary component of 3" in done.stdout, done.stdout
    assert '"pod:pxc-2" -> "pvc:datadir-pxc-2";' in graph.read_text()
    # Graphviz drew it: an SVG document whose node titles are the graph's (it writes '-' as &#45;).
    drawing = ElementTree.parse(svg).getroot()
    titles = {t.text for t in drawing.iter("{http://www.w3.org/2000/svg}title")}
    assert drawing.tag == "{http://www.w3.org/2000/svg}svg" and {"pod:pxc-2", "pvc:datadir-pxc-2"} <= titles
