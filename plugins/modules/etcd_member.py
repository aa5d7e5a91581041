#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: etcd_member
short_description: Plan and change the etcd membership of a StatefulSet's members, one member at a time
version_added: 0.2.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Reads and changes the membership of an etcd cluster whose members are the pods of a StatefulSet (C(<name>-<ordinal>),
    peer URL C(<scheme>://<name>-<ordinal>.<domain>:<peer_port>)), with C(etcdctl) run in a Ready member's container.
  - V(plan) reads the members, their health and the set, and returns the steps to O(replicas) members. Members at or
    above that size are removed, the highest first, each before the set shrinks past it. Missing members are added
    as learners, the lowest first, each promoted before the next is added. The steps start from what etcd and the set
    hold, so a run stopped between two of them is planned again from where it stopped.
  - V(add) adds the member of O(ordinal) as a learner, V(promote) makes that learner a voting member once it has
    caught up with the leader (trying again until O(timeout)), V(remove) removes the member. Each does nothing when
    it is done already.
  - V(settle) waits until the set's pods at or above O(replicas) are gone (the controller deletes them once the set
    has shrunk), and changes nothing.
  - Each change first checks the members' health (C(etcdctl endpoint health --cluster)). A change that could leave the
    voting members without a healthy majority is refused, before anything is written.
  - The roles of this collection call it from the etcd role when O(replicas) differs from the running set; see that
    role's README for the order of the steps and how the new members are configured.
options:
  action:
    description: What to do.
    type: str
    choices: [plan, add, promote, remove, settle]
    default: plan
  ordinal:
    description: The ordinal of the member to add, promote or remove.
    type: int
  replicas:
    description: With V(plan), the number of members wanted; with V(settle), the set's size.
    type: int
  claim_template:
    description:
      - With V(plan), the name of the set's volume claim template. A member to add whose claim
        C(<claim_template>-<name>-<ordinal>) exists already (left by a member removed before) is refused.
    type: str
    default: data
  scheme:
    description: V(https) when the members use TLS, else V(http).
    type: str
    choices: [http, https]
    default: https
  client_port:
    description: The members' client port.
    type: int
    default: 2379
  peer_port:
    description: The members' peer port.
    type: int
    default: 2380
  domain:
    description: The domain of the members' peer URLs (the headless Service's, C(<service>.<namespace>.svc.<cluster domain>)).
    type: str
    required: true
  container:
    description: The container of the member pods that has C(etcdctl).
    type: str
    default: etcd
  timeout:
    description: How long, in seconds, the module may take (a promotion waits for the learner to catch up).
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    details: V(plan) reads in check mode too and reports a change when there are steps; the other actions read and
      check health, and change nothing.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
  - kubess.stateful.statefulset
notes:
  - The credentials need C(create) on C(pods/exec), C(list) on C(pods) and C(persistentvolumeclaims), and C(get) on
    C(statefulsets) (apps), in the namespace.
  - Without check mode, V(plan) is a read and never reports a change; V(settle) never does. V(settle) needs C(watch)
    on C(pods).
seealso:
  - module: kubess.stateful.statefulset_wait
"""

EXAMPLES = r"""
- name: Plan the way to five members
  kubess.stateful.etcd_member:
    name: etcd
    namespace: kubess
    domain: etcd.kubess.svc.cluster.local
    replicas: 5
  register: etcd_plan

- name: Add etcd-3 as a learner
  kubess.stateful.etcd_member:
    name: etcd
    namespace: kubess
    domain: etcd.kubess.svc.cluster.local
    action: add
    ordinal: 3
"""

RETURN = r"""
members:
  description: With V(plan), the members by ordinal; C(started) is false for a member added but not started yet.
  returned: plan
  type: list
  elements: dict
  sample: [{"ordinal": 0, "hex": "8e9e05c52164694d", "learner": false, "started": true}]
healthy:
  description: With V(plan), the ordinals of the members that answered the health check.
  returned: plan
  type: list
  elements: int
  sample: [0, 1, 2]
replicas_before:
  description: With V(plan), the set's C(spec.replicas).
  returned: plan
  type: int
  sample: 3
steps:
  description:
    - With V(plan), the steps in order. C(action) is V(remove), V(scale), V(add) or V(promote). C(ordinal) is the
      member's. C(replicas) is the set's size after the step, and C(members) the ordinals of the members after it.
  returned: plan
  type: list
  elements: dict
  sample: [{"action": "add", "ordinal": 3, "replicas": 4, "members": [0, 1, 2, 3]}]
reason:
  description: On failure, why (C(QuorumAtRisk), C(StaleClaim), C(NotPromoted), C(ForeignMember), C(NoReadyMember), C(EtcdctlFailed)).
  returned: failure
  type: str
  sample: QuorumAtRisk
settled:
  description: With V(settle), the ordinals whose pods were waited for until gone.
  returned: settle
  type: list
  elements: int
  sample: [4]
"""

import time

from ansible_collections.kubess.stateful.plugins.module_utils._etcd_members import EtcdMembers
from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import finish, set_argspec, start
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api

MEMBER_ARG_SPEC = dict(
    action=dict(type="str", default="plan", choices=["plan", "add", "promote", "remove", "settle"]),
    ordinal=dict(type="int"),
    replicas=dict(type="int"),
    claim_template=dict(type="str", default="data"),
    scheme=dict(type="str", default="https", choices=["http", "https"]),
    client_port=dict(type="int", default=2379),
    peer_port=dict(type="int", default=2380),
    domain=dict(type="str", required=True),
    container=dict(type="str", default="etcd"),
    timeout=dict(type="int", default=300),
)


def argspec():
    return set_argspec(MEMBER_ARG_SPEC)


def check_options(params):
    """The first option that is wrong, as a message, or None."""
    if params["timeout"] <= 0:
        return "timeout must be a positive number of seconds, got {0}".format(params["timeout"])
    for option in ("name", "namespace", "domain"):
        if not params[option].strip():
            return "{0} must not be empty".format(option)
    if params["action"] in ("plan", "settle"):
        if params["replicas"] is None or params["replicas"] < 1:
            return "replicas must be 1 or more with action {0}, got {1}".format(params["action"], params["replicas"])
    elif params["ordinal"] is None or params["ordinal"] < 0:
        return "ordinal must be 0 or more with action {0}, got {1}".format(params["action"], params["ordinal"])
    return None


def run(members, params, check_mode):
    if params["action"] == "plan":
        found = members.plan(params["replicas"], params["claim_template"])
        return dict(changed=bool(found["steps"]) and check_mode, replicas_before=found["replicas"],
                    members=found["members"], healthy=found["healthy"], steps=found["steps"])
    if params["action"] == "settle":
        return dict(changed=False, settled=members.settle(params["replicas"]))
    act = getattr(members, params["action"])
    return dict(changed=act(params["ordinal"], check_mode=check_mode), ordinal=params["ordinal"])


def main():
    module, api, started = start(argspec(), check_options, build_api)
    params = module.params
    members = EtcdMembers(api, params["name"], params["namespace"], params["scheme"], params["client_port"],
                          params["peer_port"], params["domain"], params["container"], started + params["timeout"],
                          clock=time.monotonic)
    finish(module, lambda: run(members, params, module.check_mode),
           "StatefulSet {0}/{1}".format(params["namespace"], params["name"]))


if __name__ == "__main__":
    main()
