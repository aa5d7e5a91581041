"""kubess.stateful.statefulset_rollout on the local cluster, run through ansible-playbook as a role runs it.

A pod template change is applied held at the partition (as the roles apply it); the module then moves one ordinal
at a time, the highest first. A template whose pods never become Ready (kwok's stuck stage, by a pod label) stops the
rollout at the highest ordinal, the others keeping their revision; the previous template rolls it back, although
the set is OrderedReady; a fixed template goes on.
"""

from __future__ import annotations

import time
from datetime import datetime

from test_statefulset_wait import ModuleRun, _audit_lines, _events_in_window, get_pod, sts_manifest, wait_pods_ready

MODULE = "kubess.stateful.statefulset_rollout"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
STUCK = {"stuck.stage.kubess.io/reason": "ErrImageNeverPull"}


def apply_held(cluster, namespace, revision, labels=None, hold=3):
    """The set with a template of its own (``revision`` in an annotation), held at the partition."""
    cluster.apply(sts_manifest("db", delay="300ms", labels=labels, partition=hold,
                               annotations={"kubess.io/test-revision": str(revision)}), namespace)
    cluster.wait_for(lambda: observed(cluster, namespace), timeout=30, what="the controller observing the set")


def observed(cluster, namespace) -> bool:
    sts = cluster.get_json("statefulset", "db", "-n", namespace)
    return sts["status"].get("observedGeneration", 0) >= sts["metadata"]["generation"]


def revisions(cluster, namespace) -> dict[int, str]:
    return {i: get_pod(cluster, namespace, f"db-{i}")["metadata"]["labels"]["controller-revision-hash"]
            for i in range(3)}


def rollout(cluster, tmp_path, namespace, check_mode=False, timeout=60, **more):
    args = dict({"name": "db", "namespace": namespace, "timeout": timeout}, **more)
    return ModuleRun(cluster, tmp_path, args, check_mode=check_mode, module=MODULE).result()


def audit(cluster, namespace, since):
    """In order: the pods created (by the controller) and the module's patches of the set (its partition)."""
    out = []
    for ev in _audit_lines(cluster):
        ref = ev.get("objectRef") or {}
        if ev.get("stage") != "ResponseComplete" or ref.get("namespace") != namespace or ev["responseStatus"]["code"] >= 300:
            continue
        at = datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if at < since:
            continue
        if ev["verb"] == "create" and ref.get("resource") == "pods" and not ref.get("subresource"):
            out.append((at, "create", ref.get("name")))
        if (ev["verb"] == "patch" and ref.get("resource") == "statefulsets" and not ref.get("subresource")
                and "python" in ev.get("userAgent", "").lower()):
            out.append((at, "partition", None))
    # The controller may create a pod twice in a row (its first try, made from a stale view of the partition, is
    # replaced at once): what counts is the order of the steps.
    steps = []
    for _at, what, value in sorted(out):
        if not steps or steps[-1] != (what, value) or what != "create":
            steps.append((what, value))
    return steps


def test_a_held_template_rolls_one_ordinal_at_a_time_the_highest_first(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("db", delay="300ms", annotations={"kubess.io/test-revision": "1"}), namespace)
    wait_pods_ready(cluster, namespace, ["db-0", "db-1", "db-2"])
    before = revisions(cluster, namespace)
    since = time.time()
    apply_held(cluster, namespace, 2)
    res = rollout(cluster, tmp_path, namespace)
    assert res["_rc"] == 0, res.get("msg")
    assert res["changed"] is True and res["partition_before"] == 3 and res["partition"] == 0
    assert [(r["ordinal"], r["forced"]) for r in res["rolled"]] == [(2, False), (1, False), (0, False)]
    after = revisions(cluster, namespace)
    assert set(after.values()) == {res["update_revision"]} and res["update_revision"] not in before.values()
    # Each ordinal's pod is made again only after the partition came down to it, and the next step only after it.
    cluster.wait_for(lambda: len(audit(cluster, namespace, since)) >= 6, timeout=30, what="the audit log")
    steps = audit(cluster, namespace, since)
    assert steps == [("partition", None), ("create", "db-2"), ("partition", None), ("create", "db-1"),
                     ("partition", None), ("create", "db-0")], steps

    again = rollout(cluster, tmp_path, namespace)
    assert again["_rc"] == 0 and again["changed"] is False and again["rolled"] == []


def test_with_wait_a_new_set_is_waited_for_and_a_held_template_rolled_then_waited_for(cluster, namespace, tmp_path):
    # A set just made (its pods may not all be made yet): nothing to roll; the module returns once every ordinal is
    # Ready, and lists no ordinal as rolled.
    cluster.apply(sts_manifest("db", delay="300ms", annotations={"kubess.io/test-revision": "1"}), namespace)
    made = rollout(cluster, tmp_path, namespace, wait=True)
    assert made["_rc"] == 0, made.get("msg")
    assert made["changed"] is False and made["rollout"]["rolled"] == [] and made["rollout"]["partition"] == 0
    assert [(o["pod"], o["ready"]) for o in made["ordinals"]] == [("db-0", True), ("db-1", True), ("db-2", True)]
    # A held template: rolled, the highest first, and the result says so under 'rollout', with the wait's fields.
    before = revisions(cluster, namespace)
    apply_held(cluster, namespace, 2)
    res = rollout(cluster, tmp_path, namespace, wait=True)
    assert res["_rc"] == 0, res.get("msg")
    assert res["changed"] is True and [r["ordinal"] for r in res["rollout"]["rolled"]] == [2, 1, 0]
    assert all(o["ready"] for o in res["ordinals"]) and res["replicas"] == 3
    after = revisions(cluster, namespace)
    assert set(after.values()) == {res["rollout"]["update_revision"]} and not set(after.values()) & set(before.values())


def test_a_bad_template_stops_at_the_highest_ordinal_rolls_back_and_a_fix_goes_on(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("db", delay="300ms", annotations={"kubess.io/test-revision": "1"}), namespace)
    wait_pods_ready(cluster, namespace, ["db-0", "db-1", "db-2"])
    good = revisions(cluster, namespace)

    apply_held(cluster, namespace, 2, labels=STUCK)
    bad = rollout(cluster, tmp_path, namespace)
    assert bad["_rc"] != 0
    assert (bad["stopped_at"], bad["reason"], bad["partition"]) == (2, "ErrImageNeverPull", 2)
    assert "The rollout of StatefulSet {0}/db stopped at ordinal 2 (db-2)".format(namespace) in bad["msg"]
    assert "Run again with the previous values to roll the updated ordinals back" in bad["msg"]
    now = revisions(cluster, namespace)
    assert now[2] == bad["update_revision"] != good[2]
    assert (now[0], now[1]) == (good[0], good[1])  # the lower ordinals keep their revision
    assert cluster.get_json("statefulset", "db", "-n", namespace)["spec"]["updateStrategy"]["rollingUpdate"][
        "partition"] == 2

    # The previous template: OrderedReady would wait for the stuck db-2 for ever; the module replaces it.
    apply_held(cluster, namespace, 1)
    back = rollout(cluster, tmp_path, namespace)
    assert back["_rc"] == 0, back.get("msg")
    assert back["rolled"] == [dict(back["rolled"][0], ordinal=2, pod="db-2", forced=True)]
    assert revisions(cluster, namespace) == good and back["update_revision"] == good[0]

    # Bad again, then fixed: the rollout goes on from where it is, to the end.
    apply_held(cluster, namespace, 3, labels=STUCK)
    assert rollout(cluster, tmp_path, namespace)["stopped_at"] == 2
    apply_held(cluster, namespace, 4)
    fixed = rollout(cluster, tmp_path, namespace)
    assert fixed["_rc"] == 0, fixed.get("msg")
    assert [(r["ordinal"], r["forced"]) for r in fixed["rolled"]] == [(2, True), (1, False), (0, False)]
    assert set(revisions(cluster, namespace).values()) == {fixed["update_revision"]}


def test_check_mode_names_the_ordinals_and_writes_nothing(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("db", delay="300ms", annotations={"kubess.io/test-revision": "1"}), namespace)
    wait_pods_ready(cluster, namespace, ["db-0", "db-1", "db-2"])
    apply_held(cluster, namespace, 2)
    start = time.time()
    res = rollout(cluster, tmp_path, namespace, check_mode=True)
    end = time.time()
    assert res["_rc"] == 0, res.get("msg")
    assert res["changed"] is True and [w["ordinal"] for w in res["would_roll"]] == [2, 1, 0]
    cluster.wait_for(lambda: any("python" in e.get("userAgent", "").lower()
                                 for e in _events_in_window(cluster, namespace, start, end)),
                     timeout=30, what="the module's read in the audit log")
    writes = [e for e in _events_in_window(cluster, namespace, start, end)
              if e["verb"] in WRITE_VERBS and "python" in e.get("userAgent", "").lower()]
    assert writes == []
    assert cluster.get_json("statefulset", "db", "-n", namespace)["spec"]["updateStrategy"]["rollingUpdate"][
        "partition"] == 3


def test_a_set_that_does_not_exist_is_reported(cluster, namespace, tmp_path):
    res = rollout(cluster, tmp_path, namespace)
    assert res["_rc"] == 0, res.get("msg")
    assert (res["exists"], res["changed"]) == (False, False)


def test_on_delete_is_refused(cluster, namespace, tmp_path):
    cluster.apply(sts_manifest("db", delay="300ms", strategy="OnDelete"), namespace)
    res = rollout(cluster, tmp_path, namespace)
    assert res["_rc"] != 0 and "OnDelete update strategy" in res["msg"]
