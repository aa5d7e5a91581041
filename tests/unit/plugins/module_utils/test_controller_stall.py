"""What the StatefulSet controller owes a set, and when that counts as a stall: on the YAML fixtures in fixtures/."""

from __future__ import annotations

import pytest

from ansible_collections.kubess.stateful.tests.unit.plugins.module_utils.yaml_fixtures import fx
from ansible_collections.kubess.stateful.plugins.module_utils import _controller_stall as cs

NEW = "web-7d9c8b6f5d"
OLD = "web-5f6d4c7b8a"


def pod(key, ordinal, revision=NEW, uid=None):
    p = fx("pods", key)
    p["metadata"]["name"] = f"web-{ordinal}"
    p["metadata"]["uid"] = uid or f"uid-{ordinal}"
    p["metadata"].setdefault("labels", {}).update({"apps.kubernetes.io/pod-index": str(ordinal), "controller-revision-hash": revision})
    return p


def pods(*specs):
    """{ordinal: pod} from (ordinal, fixture key[, revision]) tuples."""
    return {spec[0]: pod(spec[1], spec[0], *spec[2:]) for spec in specs}


def sts(key, **changes):
    s = fx("statefulsets", key)
    for path, value in changes.items():
        node = s
        *parents, leaf = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return s


@pytest.mark.parametrize(
    "sts_obj, by_ord, wait_for_update, expected",
    [
        # The new spec not observed: owed whatever the pods.
        (sts("not_observed"), pods((0, "ready_rev_new")), True, ("observe", None, None, 0)),
        (sts("fresh_no_status"), {}, True, ("observe", None, None, 0)),  # just created, no status at all
        # OrderedReady: the next pod once every lower one is Ready, after minReadySeconds (10 s here).
        (sts("ordered_min_ready"), {}, True, ("create", 0, "web-0", 0)),
        (sts("ordered_min_ready"), pods((0, "ready_rev_new")), True, ("create", 1, "web-1", 10)),
        (sts("ordered_min_ready"), pods((0, "ready_rev_new"), (1, "ready_rev_new")), True, ("create", 2, "web-2", 10)),
        (sts("ordered_min_ready"), pods((0, "running_not_ready")), True, None),  # the kubelet's turn
        (sts("ordered_min_ready"), pods((0, "created_pending")), True, None),
        (sts("ordered_min_ready"), pods((0, "ready_rev_new"), (1, "deleting_ready")), True, None),  # going away first
        (sts("ordered_min_ready"), pods((0, "ready_rev_new"), (2, "ready_rev_new")), True, ("create", 1, "web-1", 10)),
        (sts("ordered_min_ready"), pods((0, "image_pull_backoff")), True, None),  # stuck, but not the controller's step
        # Parallel (ordinals from 5): every missing pod is owed at once, whatever the others' state.
        (sts("parallel_start_ordinal"), pods((5, "created_pending")), True, ("create", 6, "web-6", 0)),
        (sts("parallel_start_ordinal"), {}, True, ("create", 5, "web-5", 0)),
        (sts("parallel_start_ordinal"), pods((5, "created_pending"), (6, "running_not_ready")), True, None),
        # Rolling update: every pod Ready, the highest one at or above the partition on the old revision.
        (sts("ordered_min_ready"), pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new")), True,
         ("update", 1, "web-1", 10)),
        (sts("ordered_min_ready"), pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new", OLD)),
         True, ("update", 2, "web-2", 10)),
        (sts("ordered_min_ready"), pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "running_not_ready")),
         True, None),  # the updated pod is not Ready yet: the controller waits for it
        (sts("rolling_partitioned"), pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new")),
         True, None),  # 0 and 1 below the partition keep the old revision
        (sts("rolling_partitioned"), pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new", OLD)),
         True, ("update", 2, "web-2", 0)),
        (sts("ordered_min_ready"), pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new", OLD)),
         False, None),  # wait_for_update: false does not ask for the revision, so no update is owed either
        (sts("on_delete"), pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new", OLD)), True,
         None),  # OnDelete: the controller replaces nothing by itself
        # Nothing owed.
        (sts("ordered_min_ready"), pods((0, "ready_rev_new"), (1, "ready_rev_new"), (2, "ready_rev_new")), True, None),
        (sts("ordered_min_ready", spec__replicas=2), pods((0, "ready_rev_new"), (1, "ready_rev_new")), True, None),
        (sts("being_deleted"), {}, True, None),
        (None, {}, True, None),
    ],
)
def test_owed_action(sts_obj, by_ord, wait_for_update, expected):
    owed = cs.owed_action(sts_obj, by_ord, wait_for_update)
    if expected is None:
        assert owed is None
        return
    assert (owed["action"], owed["ordinal"], owed["pod"], owed["grace"]) == expected
    assert owed["generation"] == sts_obj["metadata"]["generation"]


def test_owed_steps_say_what_is_not_done():
    observe = cs.owed_action(sts("not_observed"), {})
    assert observe["detail"] == "it has not observed generation 5 of the set (status.observedGeneration is 4)"
    assert observe["observed_generation"] == 4
    create = cs.owed_action(sts("ordered_min_ready"), pods((0, "ready_rev_new")))
    assert create["detail"] == "it has not created pod web-1 (ordinal 1), although every ordinal below it is Ready (OrderedReady)"
    all_old = pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new", OLD))
    update = cs.owed_action(sts("rolling_partitioned"), all_old)
    assert f"pod web-2 (ordinal 2, revision {OLD}) with one of the update revision {NEW}" in update["detail"]


def test_the_same_step_keeps_its_key_and_another_does_not():
    ordered = sts("ordered_min_ready")
    one = cs.owed_action(ordered, pods((0, "ready_rev_new")))
    again = cs.owed_action(ordered, pods((0, "ready_rev_new", NEW, "uid-0-recreated")))
    assert one["key"] == again["key"]
    assert cs.owed_action(ordered, pods((0, "ready_rev_new"), (1, "ready_rev_new")))["key"] != one["key"]
    old = pods((0, "ready_rev_new", OLD), (1, "ready_rev_new", OLD), (2, "ready_rev_new", OLD))
    replaced = {**old, **pods((2, "ready_rev_new", OLD, "uid-2-recreated"))}
    # A pod of the old revision made again (the controller acted, though not as hoped) is a new step.
    assert cs.owed_action(ordered, old)["key"] != cs.owed_action(ordered, replaced)["key"]


CREATE_1 = {"key": ("create", 1), "grace": 0}
CREATE_1_GRACE = {"key": ("create", 1), "grace": 10}
CREATE_2 = {"key": ("create", 2), "grace": 0}


@pytest.mark.parametrize(
    "looks, threshold, now, stalled",
    [
        ([(CREATE_1, 0.0)], 60, 59.9, False),
        ([(CREATE_1, 0.0)], 60, 60.0, True),
        ([(CREATE_1, 0.0), (CREATE_1, 30.0)], 60, 60.0, True),  # the same step: counted from its first look
        ([(CREATE_1, 0.0), (CREATE_2, 30.0)], 60, 89.9, False),  # the controller acted at 30: counted again
        ([(CREATE_1, 0.0), (CREATE_2, 30.0)], 60, 90.0, True),
        ([(CREATE_1, 0.0), (None, 20.0), (CREATE_1, 30.0)], 60, 89.9, False),  # nothing owed in between resets it
        ([(CREATE_1_GRACE, 0.0)], 60, 69.9, False),  # minReadySeconds on top of the threshold
        ([(CREATE_1_GRACE, 0.0)], 60, 70.0, True),
        ([(CREATE_1, 0.0)], 0, 1e6, False),  # 0: the check is off
        ([(None, 0.0)], 60, 1e6, False),
    ],
)
def test_stall_decision(looks, threshold, now, stalled):
    followed = None
    for owed, at in looks:
        followed = cs.follow(followed, owed, at)
    assert cs.is_stalled(followed, threshold, now) is stalled


def test_stall_deadline():
    assert cs.stall_deadline(cs.follow(None, CREATE_1_GRACE, 5.0), 60) == 75.0
    assert cs.stall_deadline(None, 60) is None
    assert cs.stall_deadline(cs.follow(None, CREATE_1, 5.0), 0) is None


@pytest.mark.parametrize(
    "keys, failing",
    [
        (["sts_successful_create", "sts_failed_create"], "FailedCreate"),
        (["sts_failed_create", "sts_successful_create"], None),  # it failed, then it created: it acts
        (["sts_successful_create"], None),
        ([], None),
    ],
)
def test_controller_failing(keys, failing):
    found = cs.controller_failing([fx("events", k) for k in keys])
    assert (found or {}).get("reason") == failing
