"""etcd membership changes through the site playbook, on real etcd members: 3 -> 5 -> 3 members, each run resuming
from the state a run stopped between `member add` and the scale (or between `member remove` and the scale) leaves,
the running members never restarted, the data kept; then growing over a claim a removed member left is refused
before anything is written. The last run puts the site's own size back, so that the site's rerun changes nothing.
Last, with one member's etcd frozen, a size change that would lose quorum is refused before anything is written.

A run cannot be killed exactly between two of its API calls from outside, so the stopped run's state is made by
hand with the same etcdctl call the role makes (the ConfigMap written before it only makes the next run read the
membership, which a size change does anyway)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid

from conftest import REPO, run_site
from test_etcd import endpoint

sys.path.insert(0, str(REPO / "molecule" / "shared"))
from audit_writes import writes  # noqa: E402 pylint: disable=wrong-import-position


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


def etcd_pid(stack, pod: str) -> int:
    """The host PID of the etcd process in ``pod`` (the node's containers are processes of this machine)."""
    ids = stack.node.crictl("ps", "-q", "--name", "^etcd$", "--label", f"io.kubernetes.pod.name={pod}",
                            "--label", f"io.kubernetes.pod.namespace={stack.namespace}").split()
    assert len(ids) == 1, ids
    return int(json.loads(stack.node.crictl("inspect", ids[0]))["info"]["pid"])


def restarts(stack, pod: str) -> int:
    return sum(s["restartCount"] for s in stack.get("pod", pod)["status"]["containerStatuses"])


def test_a_size_change_that_would_lose_quorum_is_refused_before_any_write(stack):
    """etcd-1's etcd is frozen (SIGSTOP from the host: its process and its pod stay, it answers nothing). Going to 2
    members would remove etcd-2 and leave etcd-0 the only healthy one of two voting members: the site run is refused
    in its preflight, naming etcd-1, with no write to the API and the membership unchanged."""
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    three = [f"etcd-{n}" for n in range(3)]
    assert voters_and_learners(stack) == (three, []) and healthy(stack, three) == three
    # The set's generation (its spec), not its resourceVersion: the controller writes its status as etcd-1's
    # readiness changes.
    before = stack.get("statefulset", "etcd")["metadata"]["generation"]
    pid, restarted = etcd_pid(stack, "etcd-1"), restarts(stack, "etcd-1")
    os.kill(pid, signal.SIGSTOP)
    try:
        # Unhealthy to `endpoint health` at once (the module runs etcdctl in etcd-0, the lowest Ready member). The
        # run must end before the liveness probe restarts etcd-1 (8 failures, 10 s apart), so nothing waits here.
        assert healthy(stack, three) == ["etcd-0", "etcd-2"]
        since = time.time()
        refused = run_site(env, "members-quorum", "-e", json.dumps({"etcd_replicas": 2, "etcd_allow_unsafe_size": True}))
        with open(stack.node.cluster.audit_log, encoding="utf-8") as log:
            # Reading the membership execs etcdctl in a member's pod (a create of pods/exec); nothing else is sent.
            api_writes = [w for w in writes(log, since) if not w["uri"].split("?")[0].endswith("/exec")]
        # The liveness probe did not restart the frozen member during the run: it was down throughout.
        assert restarts(stack, "etcd-1") == restarted
    finally:
        os.kill(pid, signal.SIGCONT)
    text = refused.log.read_text(errors="replace")
    assert refused.returncode != 0, refused.tail()
    assert "removing voting member 2 would leave 2 voting members of which 1 are healthy" in text, refused.tail()
    assert "Unhealthy voting members: etcd-1;" in text and "Nothing was changed" in text, refused.tail()
    assert api_writes == [], api_writes
    assert stack.get("statefulset", "etcd")["metadata"]["generation"] == before
    assert voters_and_learners(stack) == (three, [])
    stack.wait_for(lambda: stack.ready("etcd-1"), timeout=180, what="etcd-1 Ready again")
    assert healthy(stack, three) == three
