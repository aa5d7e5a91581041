"""The etcd membership plan: which steps, in which order, from what etcd and the StatefulSet hold (including what a
run stopped half-way leaves), and the quorum rule each change is checked against."""

from __future__ import annotations

import json

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils._etcd_members import (
    EtcdMembers,
    parse_members,
    plan,
    quorum_problem,
)
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ModuleFailure

URL = "https://etcd-{0}.etcd.kubess.svc.cluster.local:2380"


def member(ordinal, learner=False, started=True):
    return dict(id=100 + ordinal, hex=format(100 + ordinal, "x"), ordinal=ordinal, url=URL.format(ordinal),
                learner=learner, started=started)


def voters(*ordinals):
    return [member(o) for o in ordinals]


def steps_of(result):
    return [(s["action"], s["ordinal"], s["replicas"], s["members"]) for s in result]


def test_nothing_to_do_at_the_size_asked_for():
    assert plan(voters(0, 1, 2), 3, 3) == []


def test_growing_adds_one_learner_at_a_time_the_lowest_first():
    assert steps_of(plan(voters(0, 1, 2), 3, 5)) == [
        ("add", 3, 4, [0, 1, 2, 3]),
        ("add", 4, 5, [0, 1, 2, 3, 4]),
    ]


def test_shrinking_removes_the_highest_member_before_the_set_shrinks_past_it():
    assert steps_of(plan(voters(0, 1, 2, 3, 4), 5, 3)) == [
        ("remove", 4, 4, [0, 1, 2, 3]),
        ("remove", 3, 3, [0, 1, 2]),
    ]


def test_a_run_stopped_after_member_add_promotes_the_learner_then_goes_on():
    # etcd-3 added as a learner (not started: no name yet), the set still at 3.
    members = voters(0, 1, 2) + [member(3, learner=True, started=False)]
    assert steps_of(plan(members, 3, 5)) == [
        ("promote", 3, 4, [0, 1, 2, 3]),
        ("add", 4, 5, [0, 1, 2, 3, 4]),
    ]


def test_a_run_stopped_after_member_add_and_asked_back_to_the_old_size_removes_the_learner():
    members = voters(0, 1, 2) + [member(3, learner=True, started=False)]
    assert steps_of(plan(members, 3, 3)) == [("remove", 3, 3, [0, 1, 2])]


def test_a_run_stopped_after_member_remove_scales_the_set_down_without_removing_again():
    # etcd-4 removed from etcd, the set still at 5: its pod goes alone first (under OrderedReady the controller
    # deletes a pod only when no lower one is unhealthy, and a removed member's pod is), then etcd-3 is removed.
    assert steps_of(plan(voters(0, 1, 2, 3), 5, 3)) == [
        ("scale", 4, 4, [0, 1, 2, 3]),
        ("remove", 3, 3, [0, 1, 2]),
    ]
    assert steps_of(plan(voters(0, 1, 2), 5, 3)) == [("scale", 4, 4, [0, 1, 2]), ("scale", 3, 3, [0, 1, 2])]


def test_a_started_learner_is_promoted_where_the_set_already_runs_it():
    members = voters(0, 1, 2) + [member(3, learner=True)]
    assert steps_of(plan(members, 4, 4)) == [("promote", 3, 4, [0, 1, 2, 3])]


def test_members_are_known_by_their_peer_url_and_a_foreign_one_is_refused():
    listing = {"members": [
        {"ID": 1234567890123456789, "name": "etcd-0", "peerURLs": [URL.format(0)]},
        {"ID": 42, "name": "", "peerURLs": [URL.format(3)], "isLearner": True},
    ]}
    parsed = parse_members("etcd", listing)
    assert [(m["ordinal"], m["learner"], m["started"], m["hex"]) for m in parsed] == [
        (0, False, True, format(1234567890123456789, "x")), (3, True, False, "2a")]
    with pytest.raises(ValueError, match="is not a member of StatefulSet etcd"):
        parse_members("etcd", {"members": [{"ID": 7, "name": "other", "peerURLs": ["https://10.0.0.9:2380"]}]})
    # Another set's members (etcd-backup-0) are not this set's.
    with pytest.raises(ValueError):
        parse_members("etcd", {"members": [{"ID": 7, "name": "x", "peerURLs": ["https://etcd-backup-0.etcd:2380"]}]})


def test_removing_a_healthy_member_while_another_is_down_would_lose_quorum():
    members = voters(0, 1, 2)
    # 3 voters, etcd-1 down: removing etcd-2 leaves 2 voters of which 1 is healthy, below 2.
    why, down = quorum_problem("remove", 2, members, {0, 2})
    assert "removing voting member 2 would leave 2 voting members of which 1 are healthy" in why and down == [1]
    # Removing the member that is down keeps the quorum.
    assert quorum_problem("remove", 1, members, {0, 2}) is None
    # Every member healthy: fine.
    assert quorum_problem("remove", 2, members, {0, 1, 2}) is None


def test_adding_a_member_needs_a_quorum_of_the_larger_cluster_counting_the_new_one():
    members = voters(0, 1, 2)
    assert quorum_problem("add", 3, members, {0, 1, 2}) is None
    assert quorum_problem("add", 3, members, {0, 1}) is None  # 2 + the new one = 3 of 4
    problem = quorum_problem("add", 3, members, {0})
    assert problem is not None and "fewer than their quorum of 3" in problem[0] and problem[1] == [1, 2]
    learner = members + [member(3, learner=True)]
    assert quorum_problem("promote", 3, learner, {0, 1}) is None
    assert quorum_problem("promote", 3, learner, {0}) is not None
    # A learner (or a member added but not started) does not vote: removing it never risks the quorum.
    assert quorum_problem("remove", 3, learner, {0}) is None


# --- EtcdMembers: etcdctl through pods/exec, against an API that answers as etcd would --------------------------
class EtcdApi:
    """A StatefulSet's pods, claims and an etcd membership; ``exec_in_pod`` answers the etcdctl commands the module
    runs, as etcdctl prints them (-w json), and records them."""

    def __init__(self, voters, replicas, learners=(), down=(), claims=(), catch_up=0, waiting=None):
        self.members = {o: dict(ID=1000 + o, name=f"etcd-{o}", peerURLs=[URL.format(o)], isLearner=False) for o in voters}
        for o in learners:
            self.members[o] = dict(ID=1000 + o, name="", peerURLs=[URL.format(o)], isLearner=True)
        self.replicas, self.down, self.claims = replicas, set(down), list(claims)
        self.catch_up, self.waiting = catch_up, waiting
        self.commands = []

    def list(self, path, query=(), timeout=30):
        if path.endswith("/statefulsets/etcd"):
            return {"spec": {"replicas": self.replicas}}
        if path.endswith("/pods"):
            pods = []
            for o in range(self.replicas):
                status = {"conditions": [{"type": "Ready", "status": "False" if o in self.down else "True"}]}
                if self.waiting and o == self.waiting[0]:
                    status["containerStatuses"] = [{"name": "etcd", "restartCount": self.waiting[2],
                                                    "state": {"waiting": {"reason": self.waiting[1]}}}]
                pods.append({"metadata": {"name": f"etcd-{o}"}, "status": status})
            return {"items": pods}
        if path.endswith("/persistentvolumeclaims"):
            return {"items": [{"metadata": {"name": c}} for c in self.claims]}
        raise AssertionError(path)

    def exec_in_pod(self, namespace, pod, container, command, timeout=60):
        assert command[0] == "etcdctl" and command[1] == "--endpoints=https://127.0.0.1:2379" and container == "etcd"
        args = command[3:]
        self.commands.append((pod, args))
        if args[:2] == ["member", "list"]:
            return 0, json.dumps({"members": list(self.members.values())}), ""
        if args[:2] == ["endpoint", "health"]:
            health = [{"endpoint": f"https://etcd-{o}.etcd.kubess.svc.cluster.local:2379", "health": o not in self.down}
                      for o, m in self.members.items() if m["name"]]
            return (1 if self.down else 0), json.dumps(health), ""
        if args[:2] == ["member", "add"]:
            o = int(args[2].rsplit("-", 1)[1])
            self.members[o] = dict(ID=1000 + o, name="", peerURLs=[args[4].split("=", 1)[1]], isLearner=True)
            return 0, "{}", ""
        if args[:2] == ["member", "promote"]:
            if self.catch_up > 0:
                self.catch_up -= 1
                return 1, "", "Error: etcdserver: can only promote a learner member which is in sync with leader"
            member = next(m for m in self.members.values() if format(m["ID"], "x") == args[2])
            member["isLearner"] = False
            return 0, "", ""
        if args[:2] == ["member", "remove"]:
            self.members = {o: m for o, m in self.members.items() if format(m["ID"], "x") != args[2]}
            return 0, "", ""
        if args == ["version"]:
            return 0, "etcdctl version: 3.6.16", ""
        raise AssertionError(args)


def etcd_members(api, **kwargs):
    return EtcdMembers(api, "etcd", "kubess", "https", 2379, 2380, "etcd.kubess.svc.cluster.local", "etcd",
                       deadline=kwargs.pop("deadline", 1e12), pause=lambda _s: None, **kwargs)


WRITES = (["member", "add"], ["member", "promote"], ["member", "remove"])


def writes(api):
    return [args[:2] for _pod, args in api.commands if args[:2] in WRITES]


def test_add_makes_a_learner_once_and_check_mode_only_checks():
    api = EtcdApi([0, 1, 2], 3)
    assert etcd_members(api).add(3, check_mode=True) is True and writes(api) == []
    assert etcd_members(api).add(3) is True
    assert api.members[3]["isLearner"] and api.members[3]["peerURLs"] == [URL.format(3)]
    assert etcd_members(api).add(3) is False  # a member already: nothing again
    assert writes(api) == [["member", "add"]]


def test_promote_tries_again_until_the_learner_has_caught_up():
    api = EtcdApi([0, 1, 2], 4, learners=[3], catch_up=3)
    assert etcd_members(api).promote(3) is True
    assert not api.members[3]["isLearner"] and writes(api) == [["member", "promote"]] * 4
    assert etcd_members(api).promote(3) is False


@pytest.mark.parametrize("reason, restarts", [("CrashLoopBackOff", 3), ("ErrImageNeverPull", 0)])
def test_promote_stops_at_once_when_the_learners_pod_cannot_run(reason, restarts):
    api = EtcdApi([0, 1, 2], 4, learners=[3], catch_up=100, waiting=(3, reason, restarts))
    with pytest.raises(ModuleFailure) as err:
        etcd_members(api).promote(3)
    assert err.value.result["reason"] == "NotPromoted" and reason in err.value.msg
    assert writes(api) == [["member", "promote"]]


def test_promote_waits_through_a_first_crash_of_the_new_member():
    # Its first start exited once (back-off 10s): it may come back, and catch up.
    api = EtcdApi([0, 1, 2], 4, learners=[3], catch_up=2, waiting=(3, "CrashLoopBackOff", 1))
    assert etcd_members(api).promote(3) is True and not api.members[3]["isLearner"]


def test_promote_gives_up_at_the_deadline_naming_etcds_answer():
    now = [0.0]
    api = EtcdApi([0, 1, 2], 4, learners=[3], catch_up=100)
    members = EtcdMembers(api, "etcd", "kubess", "https", 2379, 2380, "etcd.kubess.svc.cluster.local", "etcd",
                          deadline=10.0, clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s))
    with pytest.raises(ModuleFailure) as err:
        members.promote(3)
    assert "had not caught up with the leader before the timeout" in err.value.msg
    assert "can only promote a learner member which is in sync with leader" in err.value.msg


def test_a_removal_that_would_lose_quorum_is_refused_before_any_write():
    api = EtcdApi([0, 1, 2, 3, 4], 5, down=[1, 2])
    with pytest.raises(ModuleFailure) as err:
        etcd_members(api).remove(4)
    assert err.value.result["reason"] == "QuorumAtRisk" and "etcd-1, etcd-2" in err.value.msg
    assert writes(api) == [] and 4 in api.members


def test_remove_runs_etcdctl_in_another_member_than_the_one_that_leaves():
    api = EtcdApi([0, 1, 2], 3)
    members = etcd_members(api)
    members.exec_pod = "etcd-2"
    assert members.remove(2) is True and 2 not in api.members
    assert [pod for pod, args in api.commands if args[:2] == ["member", "remove"]] == ["etcd-0"]


def test_the_plan_refuses_to_grow_over_a_claim_a_removed_member_left():
    api = EtcdApi([0, 1, 2], 3, claims=["data-etcd-0", "data-etcd-1", "data-etcd-2", "data-etcd-3"])
    with pytest.raises(ModuleFailure) as err:
        etcd_members(api).plan(5, "data")
    assert err.value.result["reason"] == "StaleClaim" and "claim data-etcd-3 exists" in err.value.msg
    assert "keep etcd_replicas at 3" in err.value.msg and writes(api) == []
    # A learner a stopped run added (its claim made when the set grew) is promoted, not refused.
    api = EtcdApi([0, 1, 2], 4, learners=[3], claims=["data-etcd-3"])
    assert [s["action"] for s in etcd_members(api).plan(5, "data")["steps"]] == ["promote", "add"]


def test_a_member_not_of_the_set_stops_the_plan():
    api = EtcdApi([0, 1, 2], 3)
    api.members[9] = dict(ID=9, name="intruder", peerURLs=["https://10.0.0.9:2380"], isLearner=False)
    with pytest.raises(ModuleFailure) as err:
        etcd_members(api).plan(3, "data")
    assert err.value.result["reason"] == "ForeignMember"


def test_the_plan_refuses_a_later_step_that_would_lose_quorum_before_the_first_write():
    # 5 -> 3 with etcd-1 and etcd-2 down: removing etcd-4 leaves 4 voters, 2 healthy (< 3), refused at the plan,
    # before the role writes the ConfigMap of the first step.
    api = EtcdApi([0, 1, 2, 3, 4], 5, down=[1, 2])
    with pytest.raises(ModuleFailure) as err:
        etcd_members(api).plan(3, "data")
    assert err.value.result["reason"] == "QuorumAtRisk" and err.value.result["ordinal"] == 4
    assert "Unhealthy voting members: etcd-1, etcd-2" in err.value.msg and writes(api) == []
    # The first step is safe, the second is not: 3 -> 1 with etcd-1 down, removing etcd-2 leaves 2 voters, 1 healthy.
    api = EtcdApi([0, 1, 2], 3, down=[1])
    with pytest.raises(ModuleFailure) as err:
        etcd_members(api).plan(1, "data")
    assert err.value.result["ordinal"] == 2 and "removing voting member 2" in err.value.msg


def test_the_plan_counts_each_member_it_adds_as_healthy_for_the_next_step():
    # 3 -> 5 with etcd-2 down: adding etcd-3 needs 3 of 4 (2 up + the new one); adding etcd-4 then needs 3 of 5,
    # with etcd-3 counted healthy after its step.
    api = EtcdApi([0, 1, 2], 3, down=[2])
    assert [s["action"] for s in etcd_members(api).plan(5, "data")["steps"]] == ["add", "add"]
    # With two of three down, the first add is refused.
    api = EtcdApi([0, 1, 2], 3, down=[1, 2])
    with pytest.raises(ModuleFailure) as err:
        etcd_members(api).plan(5, "data")
    assert err.value.result["reason"] == "QuorumAtRisk" and err.value.result["ordinal"] == 3
