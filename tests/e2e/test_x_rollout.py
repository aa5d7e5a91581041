"""A changed pod template rolls through the StatefulSet's partition, in real containers (etcd, OrderedReady).

An image the node does not have stops the rollout at the highest ordinal with the wait's diagnosis, the other members
keeping their revision and the cluster its quorum; the previous image rolls the stopped member back (the controller
alone would wait for it for ever under OrderedReady); a good change then rolls every member, the highest first, and
the data stays. The last run puts the site's own values back, so that the site's rerun changes nothing.
"""

from __future__ import annotations

import json
import re
import uuid

from conftest import run_site
from test_etcd import MEMBERS, endpoint


def revisions(stack) -> dict[str, str]:
    return {m: stack.get("pod", m)["metadata"]["labels"]["controller-revision-hash"] for m in MEMBERS}


def healthy(stack) -> list[str]:
    health = json.loads(stack.etcdctl("etcd-0", "endpoint", "health", "-w", "json", check=False,
                                      endpoints=[endpoint(m, stack) for m in MEMBERS]).stdout or "[]")
    return sorted(h["endpoint"].split("//")[1].split(".")[0] for h in health if h["health"])


def read(stack, member: str, key: str) -> str:
    return stack.etcdctl(member, "get", key, "--print-value-only", endpoints=[endpoint(member, stack)]).stdout.strip()


def test_etcd_rollout_stops_at_a_bad_image_rolls_back_and_goes_on(stack, tmp_path):
    play = tmp_path / "etcd.yml"
    play.write_text(json.dumps([{"name": "etcd", "hosts": "k8s_control", "gather_facts": False,
                                 "roles": [{"role": "kubess.stateful.etcd"}]}]), encoding="utf-8")
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    key, value = f"/e2e/rollout/{uuid.uuid4().hex}", uuid.uuid4().hex
    stack.etcdctl("etcd-0", "put", key, value, endpoints=[endpoint("etcd-0", stack)])
    before = revisions(stack)
    assert len(set(before.values())) == 1

    bad = run_site(env, "rollout-bad", "-e", "etcd_image=kubess.local/etcd:v0.0.0-absent", playbook=play)
    text = bad.log.read_text(errors="replace")
    assert bad.returncode != 0, bad.tail()
    assert f"The rollout of StatefulSet {stack.namespace}/etcd stopped at ordinal 2 (etcd-2)" in text, bad.tail()
    assert "ErrImageNeverPull" in text, bad.tail()
    now = revisions(stack)
    assert now["etcd-2"] != before["etcd-2"]
    assert (now["etcd-0"], now["etcd-1"]) == (before["etcd-0"], before["etcd-1"])
    assert stack.ready("etcd-0") and stack.ready("etcd-1") and not stack.ready("etcd-2")
    assert healthy(stack) == ["etcd-0", "etcd-1"]
    assert read(stack, "etcd-1", key) == value

    back = run_site(env, "rollout-back", "-v", playbook=play)
    assert back.returncode == 0, back.tail()
    assert revisions(stack) == before
    rolled = [json.loads(match) for match in re.findall(r'"rolled": (\[[^\]]*\])', back.log.read_text())]
    assert [[(r["ordinal"], r["forced"]) for r in step] for step in rolled] == [[(2, True)]], back.tail()
    assert healthy(stack) == MEMBERS
    assert read(stack, "etcd-2", key) == value

    on = run_site(env, "rollout-on", "-e", json.dumps({"etcd_pod_annotations": {"kubess.io/e2e-rollout": "1"}}),
                  playbook=play)
    assert on.returncode == 0, on.tail()
    after = revisions(stack)
    assert len(set(after.values())) == 1 and set(after.values()) != set(before.values())
    creations = {m: stack.get("pod", m)["metadata"]["creationTimestamp"] for m in MEMBERS}
    assert creations["etcd-2"] < creations["etcd-1"] < creations["etcd-0"], creations
    assert healthy(stack) == MEMBERS
    assert read(stack, "etcd-0", key) == value

    again = run_site(env, "rollout-site-values", playbook=play)
    assert again.returncode == 0, again.tail()
    assert revisions(stack) == before
    assert healthy(stack) == MEMBERS
