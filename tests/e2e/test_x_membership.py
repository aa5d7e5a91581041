"""etcd membership changes through the site playbook, on real etcd members: 3 -> 5 -> 3 members, each run resuming
from the state a run stopped between `member add` and the scale (or between `member remove` and the scale) leaves,
the running members never restarted, the data kept; then growing over a claim a removed member left is refused
before anything is written. The last run puts the site's own size back, so that the site's rerun changes nothing.

A run cannot be killed exactly between two of its API calls from outside, so the stopped run's state is made by
hand with the same etcdctl call the role makes (the ConfigMap written before it only makes the next run read the
membership, which a size change does anyway)."""

from __future__ import annotations

import json
import uuid

from conftest import run_site
from test_etcd import endpoint


def members(stack) -> list[dict]:
    return json.loads(stack.etcdctl("etcd-0", "member", "list", "-w", "json").stdout)["members"]


def pod_of(member: dict) -> str:
    """The pod name in a member's peer URL (a member added but not started has no name yet)."""
    return member["peerURLs"][0].split("//")[1].split(".")[0]


def voters_and_learners(stack) -> tuple[list[str], list[str]]:
    found = members(stack)
    return (sorted(pod_of(m) for m in found if not m.get("isLearner")),
            sorted(pod_of(m) for m in found if m.get("isLearner")))


def healthy(stack, names: list[str]) -> list[str]:
    health = json.loads(stack.etcdctl("etcd-0", "endpoint", "health", "-w", "json", check=False,
                                      endpoints=[endpoint(m, stack) for m in names]).stdout or "[]")
    return sorted(h["endpoint"].split("//")[1].split(".")[0] for h in health if h["health"])


def uids(stack, names: list[str]) -> dict[str, str]:
    return {n: stack.get("pod", n)["metadata"]["uid"] for n in names}


def read(stack, member: str, key: str) -> str:
    return stack.etcdctl(member, "get", key, "--print-value-only", endpoints=[endpoint(member, stack)]).stdout.strip()


def test_etcd_grows_to_five_and_back_to_three_resuming_stopped_runs(stack, tmp_path):
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    three, five = [f"etcd-{n}" for n in range(3)], [f"etcd-{n}" for n in range(5)]
    key, value = f"/e2e/members/{uuid.uuid4().hex}", uuid.uuid4().hex
    stack.etcdctl("etcd-0", "put", key, value, endpoints=[endpoint("etcd-0", stack)])
    running = uids(stack, three)

    # A run to 5 members stopped right after its first `member add --learner`: etcd-3 is a learner that never started.
    peer = f"https://etcd-3.etcd.{stack.namespace}.svc.cluster.local:2380"
    stack.etcdctl("etcd-0", "member", "add", "etcd-3", "--learner", f"--peer-urls={peer}")
    assert voters_and_learners(stack) == (three, ["etcd-3"])

    grow = run_site(env, "members-grow", "-e", json.dumps({"etcd_replicas": 5}))
    assert grow.returncode == 0, grow.tail()
    assert voters_and_learners(stack) == (five, [])
    assert healthy(stack, five) == five
    assert read(stack, "etcd-4", key) == value
    assert uids(stack, three) == running, "a member that was running was restarted"
    sts = stack.get("statefulset", "etcd")
    assert sts["spec"]["replicas"] == 5 and stack.get("pdb", "etcd")["spec"]["minAvailable"] == 3
    journal = stack.get("configmap", "etcd-members")["data"]
    assert journal["initial-cluster-state"] == "existing"
    assert [e.split("=")[0] for e in journal["initial-cluster"].split(",")] == five
    text = grow.log.read_text(errors="replace")
    # The stopped run's learner was promoted, not added again; etcd-4 was added and promoted.
    assert "caught up with the leader, etcd-3" in text and "member remove), add etcd-4" in text, grow.tail()
    assert "member remove), add etcd-3" not in text, grow.tail()

    # A run back to 3 stopped right after its first `member remove`: etcd-4 is no member, its pod still runs.
    etcd4 = next(m for m in members(stack) if m["name"] == "etcd-4")
    stack.etcdctl("etcd-0", "member", "remove", format(int(etcd4["ID"]), "x"))
    assert voters_and_learners(stack) == (["etcd-0", "etcd-1", "etcd-2", "etcd-3"], [])

    shrink = run_site(env, "members-shrink")
    assert shrink.returncode == 0, shrink.tail()
    assert voters_and_learners(stack) == (three, [])
    assert healthy(stack, three) == three
    assert read(stack, "etcd-2", key) == value
    assert uids(stack, three) == running, "a member that stayed was restarted"
    assert stack.get("statefulset", "etcd")["spec"]["replicas"] == 3
    # One pod at a time, each gone before the next step (with two crashed removed members, OrderedReady deletes none).
    assert {p["metadata"]["name"] for p in stack.pods("app.kubernetes.io/name=etcd")} == set(three)
    # Nothing lost: the claims of the removed members stay.
    claims = {c["metadata"]["name"] for c in stack.get("pvc", "-l", "app.kubernetes.io/name=etcd")["items"]}
    assert {"data-etcd-3", "data-etcd-4"} <= claims, claims
    text = shrink.log.read_text(errors="replace")
    assert "member remove), remove etcd-3" in text and "remove etcd-4" not in text, shrink.tail()
    assert "item=scale etcd-4, 4 pod(s)" in text and "item=remove etcd-3, 3 pod(s)" in text, shrink.tail()

    # Growing again would start etcd-3 over the data of a removed member: refused, naming the claim, nothing written.
    before = stack.get("statefulset", "etcd")["metadata"]["resourceVersion"]
    again = run_site(env, "members-stale-claim", "-e", json.dumps({"etcd_replicas": 5}))
    text = again.log.read_text(errors="replace")
    assert again.returncode != 0, again.tail()
    assert "refused to add member etcd-3: claim data-etcd-3 exists" in text, again.tail()
    assert "keep etcd_replicas at 3" in text, again.tail()
    assert stack.get("statefulset", "etcd")["metadata"]["resourceVersion"] == before
    assert voters_and_learners(stack) == (three, [])
