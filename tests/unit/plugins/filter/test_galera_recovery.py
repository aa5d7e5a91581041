"""The Galera recovery report (plugins/filter/galera_recovery.py): each member's published phase and position,
and the decision the members' own script (roles/pxc/files/pxc-entrypoint.sh) will reach, without acting."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.galera_recovery import galera_recovery

UUID = "7e3c5c4a-1b2d-11ef-9a6e-0242ac120002"
INITIALIZED = {"cluster-initialized": "true", "force-bootstrap-ordinal": "-1", "replicas": "3"}


def pod(ordinal, phase="Running", ready=False, waiting=None):
    container = {"name": "pxc", "state": {"waiting": {"reason": waiting}} if waiting else {"running": {}}}
    return {"metadata": {"name": f"pxc-{ordinal}"}, "spec": {"nodeName": "node-a"},
            "status": {"phase": phase, "containerStatuses": [container],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def published(phase="waiting", seqno=10, safe=0, empty=0, ordinal=0):
    return f"{phase}\nordinal={ordinal} empty={empty} uuid={UUID} seqno={seqno} safe_to_bootstrap={safe}\n"


def outage(*positions, bootstrap=None):
    """Three waiting members; positions[i] is (seqno, safe) of ordinal i, or None when it cannot be read."""
    bootstrap = INITIALIZED if bootstrap is None else bootstrap
    pods, seen = [], {}
    for ordinal, position in enumerate(positions):
        pods.append(pod(ordinal))
        if position is not None:
            seqno, safe = position
            seen[f"pxc-{ordinal}"] = published(seqno=seqno, safe=safe, ordinal=ordinal)
    return galera_recovery(pods, seen, len(positions), bootstrap)


def test_the_most_advanced_member_is_not_ordinal_0():
    report = outage((100, 0), (90, 0), (130, 0))
    assert report["decision"] == {"action": "bootstrap", "member": "pxc-2",
                                  "text": "pxc-2 is the most advanced member (seqno 130) and bootstraps; the others "
                                          "join it"}
    assert report["lines"][0] == f"pxc-0 on node-a: waiting; uuid {UUID} seqno 100, safe_to_bootstrap 0"
    assert [m["seqno"] for m in report["members"]] == [100, 90, 130]


def test_equal_positions_the_lowest_ordinal():
    assert outage((90, 0), (130, 0), (130, 0))["decision"]["member"] == "pxc-1"


def test_a_member_whose_position_cannot_be_read_is_waited_for_and_named_with_the_way_out():
    pods = [pod(0), pod(1), pod(2, waiting="CrashLoopBackOff")]
    seen = {"pxc-0": published(seqno=100, ordinal=0), "pxc-1": published(seqno=120, ordinal=1), "pxc-2": ""}
    report = galera_recovery(pods, seen, 3, INITIALIZED)
    decision = report["decision"]
    assert decision["action"] == "wait" and decision["member"] is None
    assert "missing: pxc-2 (container pxc is waiting (CrashLoopBackOff))" in decision["text"]
    assert "pxc-1 is the most advanced (seqno 120)" in decision["text"]
    assert "-e pxc_force_bootstrap_ordinal=1" in decision["text"]
    assert report["lines"][2] == ("pxc-2 on node-a: no phase; position unknown: container pxc is waiting "
                                  "(CrashLoopBackOff)")


@pytest.mark.parametrize("pods, seen, why", [
    ([pod(0), pod(1)], {}, "pxc-2 (no pod)"),
    ([pod(0), pod(1), pod(2, phase="Pending")], {}, "pxc-2 (the pod is Pending)"),
    ([pod(0), pod(1), pod(2)], {"pxc-2": "deciding\n"}, "pxc-2 (no position published yet (phase: deciding))"),
    ([pod(0), pod(1), pod(2)], {}, "pxc-2 (its published state could not be read)"),
])
def test_why_a_position_is_unknown(pods, seen, why):
    seen = {"pxc-0": published(seqno=1, ordinal=0), "pxc-1": published(seqno=2, ordinal=1), **seen}
    assert why in galera_recovery(pods, seen, 3, INITIALIZED)["decision"]["text"]


def test_two_members_claim_safe_to_bootstrap_the_most_advanced_claimant_goes_first():
    report = outage((100, 1), (50, 0), (120, 1))
    assert report["decision"]["member"] == "pxc-2"
    assert "pxc-0 (seqno 100) claim(s) it too and wait(s) for it" in report["decision"]["text"]


def test_safe_to_bootstrap_wins_over_a_higher_seqno():
    # Galera's own mark: the last member of a cleanly stopped cluster; a crashed member's recovered seqno is not
    # compared with it.
    assert outage((100, 0), (50, 1), (120, 0))["decision"]["member"] == "pxc-1"


def test_a_claimant_does_not_wait_for_members_that_do_not_answer_beyond_its_grace():
    report = outage((100, 1), None, None)
    assert report["decision"]["action"] == "bootstrap" and report["decision"]["member"] == "pxc-0"
    assert "once pxc-1, pxc-2 answer(s) or after its grace" in report["decision"]["text"]


def test_a_forced_ordinal_is_reported_with_what_it_loses():
    report = outage((100, 0), (90, 0), (130, 0), bootstrap=dict(INITIALIZED, **{"force-bootstrap-ordinal": "1"}))
    assert report["decision"]["action"] == "bootstrap" and report["decision"]["member"] == "pxc-1"
    assert "pxc-2 is further (seqno 130): what it holds beyond is lost" in report["decision"]["text"]


def test_a_running_cluster_is_joined():
    pods = [pod(0, ready=True), pod(1), pod(2)]
    seen = {"pxc-0": published(phase="server", seqno=-1, ordinal=0), "pxc-1": published(seqno=5, ordinal=1)}
    report = galera_recovery(pods, seen, 3, INITIALIZED)
    assert report["decision"]["action"] == "join" and report["decision"]["member"] == "pxc-0"
    assert report["lines"][0].startswith("pxc-0 on node-a: server, Ready;")


def test_a_ready_member_means_a_running_cluster_even_when_nothing_could_be_read():
    report = galera_recovery([pod(0, ready=True), pod(1, ready=True), pod(2)], {}, 3, INITIALIZED)
    assert report["decision"]["text"] == "the cluster runs (pxc-0, pxc-1): the other members join it; nothing to decide"


def test_first_install_and_lost_volumes():
    empty = {f"pxc-{i}": published(phase="waiting", seqno=-1, empty=1, ordinal=i) for i in range(3)}
    pods = [pod(i) for i in range(3)]
    first = galera_recovery(pods, empty, 3, {"force-bootstrap-ordinal": "-1"})
    assert first["decision"] == {"action": "bootstrap", "member": "pxc-0", "text": "no member holds data and the "
                                 "cluster was never initialised: pxc-0 starts a new cluster"}
    lost = galera_recovery(pods, empty, 3, INITIALIZED)
    assert lost["decision"]["action"] == "wait"
    assert "refuse to start an empty cluster over lost volumes" in lost["decision"]["text"]
    assert lost["lines"][1] == "pxc-1 on node-a: waiting; empty data directory, safe_to_bootstrap 0"


def test_bad_arguments_are_refused():
    with pytest.raises(AnsibleFilterError, match="replicas must be a positive number"):
        galera_recovery([], {}, 0)
    with pytest.raises(AnsibleFilterError, match="a mapping"):
        galera_recovery([], [], 3)
