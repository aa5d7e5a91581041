#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: statefulset_wait
short_description: Wait until the pods of a StatefulSet are Ready, ordinal by ordinal
version_added: 0.1.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Waits until every ordinal of a StatefulSet (pods C(<name>-0) to C(<name>-<replicas - 1>)) is Ready, and returns
    only then, with the time at which each ordinal was seen Ready.
  - Driven by watches, not by polling. It lists the StatefulSet and its pods (by the set's C(spec.selector)) once,
    then watches both from that resourceVersion, each watch lasting until the deadline, so the number of API requests
    does not grow with the length of the wait and the last ordinal becoming Ready is noticed at once.
  - A dropped watch (API server restart, network) is resumed from the last resourceVersion seen, with backoff, until
    the deadline; a watch answered with 410 Gone lists again. A pod deleted and recreated while waiting (same name, new
    uid) counts as not Ready until the new pod is Ready.
  - When the StatefulSet is in a rolling update (C(status.updateRevision)), an ordinal counts only when its pod carries
    that revision (label C(controller-revision-hash)), except ordinals below
    C(spec.updateStrategy.rollingUpdate.partition), which keep the old revision and only need to be Ready.
  - Fails fast, without waiting for O(timeout), when an ordinal cannot become Ready by itself, see O(fail_fast). The
    error names the StatefulSet, the ordinal, the pod, the reason, the message and the pod's last events.
  - Fails, without waiting for O(timeout), when the StatefulSet controller does not act on the set for
    O(controller_stall_timeout) seconds, see there. The error names the step the controller owes (observe the new spec,
    create the pod of an ordinal, replace a pod with the update revision), the ordinal, since when, and what to check.
  - Claims and their events are read only when a pod waits on claims to be bound; the pod's events only to explain
    a failure or a timeout.
options:
  replicas:
    description:
      - Number of ordinals to wait for, from the first ordinal (C(spec.ordinals.start), usually 0).
      - Defaults to the StatefulSet's C(spec.replicas), as it is when the wait starts and as it changes while waiting.
    type: int
  timeout:
    description:
      - How long to wait, in seconds, for every ordinal to be Ready (and, with O(wait_for_set), for the set to appear).
    type: int
    default: 300
  wait_for_set:
    description:
      - Wait for a StatefulSet that does not exist yet to be created, instead of failing at once.
    type: bool
    default: false
  wait_for_update:
    description:
      - During a rolling update, count an ordinal only once its pod runs the StatefulSet's C(status.updateRevision).
      - Ordinals below the rolling update's C(partition) are not required to run it.
      - With the C(OnDelete) update strategy the controller replaces no pod by itself, so the revision is not checked.
      - Whatever this option, the module waits until the controller has observed the latest spec
        (C(status.observedGeneration)), so that pods are never judged against a stale revision.
    type: bool
    default: true
  fail_fast:
    description:
      - Fail as soon as an ordinal cannot become Ready by itself, instead of waiting for O(timeout).
      - That is when the pod's phase is C(Failed); a container waits with reason C(ErrImagePull), C(ImagePullBackOff),
        C(InvalidImageName), C(ErrImageNeverPull), C(CrashLoopBackOff), C(CreateContainerConfigError) or
        C(CreateContainerError); a claim of the pod is C(Pending) with an event saying no volume matches (C(FailedBinding),
        or a StorageClass that does not exist), or C(Lost); or the pod is C(Unschedulable) (the scheduler's message is
        reported), unless the scheduler only waits for claims that may still be provisioned.
      - Set to V(false) when such a state is expected to clear by itself, for example a container in C(CrashLoopBackOff)
        until a peer comes up.
    type: bool
    default: true
  controller_stall_timeout:
    description:
      - Fail when the StatefulSet controller (in kube-controller-manager) has owed the set the same step for this many
        seconds, instead of waiting for O(timeout).
      - The steps are the controller's alone, so a wait on them cannot end well while it does not act. They are
        C(status.observedGeneration) behind C(metadata.generation) (the new spec not observed); no pod for an ordinal
        of C(spec.replicas) while, with C(OrderedReady), every lower ordinal is Ready (or with C(Parallel), at all);
        every pod Ready and one at or above the rolling update's partition not on C(status.updateRevision) (not
        replaced). Nothing is owed while a pod is not Ready yet or is being deleted, since the controller waits for
        those on purpose, and C(spec.minReadySeconds) is added to the threshold after a pod becomes Ready.
      - Counted from when the wait first sees the step owed, and counted again after the API server was unreachable.
        The error, and the RV(stall) result, say which step, which ordinal and pod, since when, and what to check
        (whether kube-controller-manager runs and its logs, or the controller's own C(FailedCreate) events).
      - The default leaves a controller manager that restarts, or hands over its leader lease, time to come back; it
        fails a wait on a controller that is down well before a long O(timeout).
      - Independent of O(fail_fast). V(0) turns the check off; the timeout message still says what the controller owes.
    type: int
    default: 60
requirements:
  - PyYAML >= 3.11
attributes:
  check_mode:
    support: full
    details: Reads the StatefulSet and its pods once, reports which ordinals are Ready and which a real run would wait for,
      and returns without waiting. A StatefulSet that does not exist is reported, not an error, since an earlier task in
      the same check-mode run may only have pretended to create it.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
  - kubess.stateful.statefulset
notes:
  - The credentials need C(get), C(list) and C(watch) on C(statefulsets) (apps), C(pods), C(persistentvolumeclaims) and
    C(events) in the namespace.
  - The module makes no change; RV(changed) is always false.
seealso:
  - module: kubernetes.core.k8s
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
- name: Apply the etcd StatefulSet
  kubernetes.core.k8s:
    state: present
    template: etcd-statefulset.yaml.j2

- name: Wait until every etcd ordinal is Ready, in order
  kubess.stateful.statefulset_wait:
    name: etcd
    namespace: etcd
    timeout: 600
  register: etcd_wait

- name: Show when each member became Ready
  ansible.builtin.debug:
    msg: "{{ etcd_wait.ordinals | map(attribute='ready_seconds') | list }}"

- name: Wait for a StatefulSet an operator creates, with an explicit kubeconfig and context
  kubess.stateful.statefulset_wait:
    name: pxc
    namespace: databases
    wait_for_set: true
    timeout: 900
    kubeconfig: ~/.kube/prod
    context: prod-admin

- name: Wait for the first three ordinals only (for example before scaling further)
  kubess.stateful.statefulset_wait:
    name: mysql
    namespace: databases
    replicas: 3

- name: Wait for pods that may crash-loop until their peers are up
  kubess.stateful.statefulset_wait:
    name: galera
    namespace: databases
    fail_fast: false
    timeout: 1200

- name: Wait on a cluster whose controller manager may take a few minutes to come back
  kubess.stateful.statefulset_wait:
    name: etcd
    namespace: etcd
    timeout: 900
    controller_stall_timeout: 300
"""

RETURN = r"""
changed:
  description: Always false; the module only reads.
  returned: always
  type: bool
  sample: false
name:
  description: Name of the StatefulSet.
  returned: always
  type: str
  sample: etcd
namespace:
  description: Namespace of the StatefulSet.
  returned: always
  type: str
  sample: etcd
replicas:
  description: Number of ordinals waited for (O(replicas), else the set's C(spec.replicas)); null if the set was never seen.
  returned: always
  type: int
  sample: 3
ordinals:
  description: One entry per ordinal waited for, lowest first.
  returned: always
  type: list
  elements: dict
  contains:
    ordinal:
      description: The ordinal.
      type: int
      sample: 0
    pod:
      description: Name of the ordinal's pod.
      type: str
      sample: etcd-0
    ready:
      description: Whether the ordinal counts as Ready (Ready, not being deleted, and on the update revision when required).
      type: bool
      sample: true
    ready_seconds:
      description:
        - Seconds from the start of the module until the pod was seen becoming Ready (the last time, if it went unready
          in between); close to 0 for a pod already Ready when the wait started.
        - Null when the ordinal is not Ready.
      type: float
      sample: 4.172
    uid:
      description: The pod's uid (null when the pod does not exist).
      type: str
      sample: 0b7f6b2e-6c1f-4b5e-9a57-8d2f3c1e0a11
    revision:
      description: The pod's C(controller-revision-hash) label.
      type: str
      sample: etcd-7d9c8b6f5d
    phase:
      description: The pod's phase.
      type: str
      sample: Running
    node:
      description: The node the pod runs on.
      type: str
      sample: node-1
duration:
  description: Seconds the module took, from its start to its return.
  returned: always
  type: float
  sample: 12.408
update_revision:
  description: The revision ordinals had to run (C(status.updateRevision)), or null when the revision was not checked.
  returned: always
  type: str
  sample: etcd-7d9c8b6f5d
partition:
  description: The rolling update's partition; ordinals below it were not required to run RV(update_revision).
  returned: always
  type: int
  sample: 0
pod_management_policy:
  description: The StatefulSet's C(podManagementPolicy).
  returned: always
  type: str
  sample: OrderedReady
api_requests:
  description: Number of API requests the wait made (lists, watches, event reads), API discovery not included.
  returned: always
  type: int
  sample: 4
reconnects:
  description: Number of times a watch lost the API server and connected again.
  returned: always
  type: int
  sample: 0
relists:
  description: Number of times a watch was answered 410 Gone and its collection was listed again.
  returned: always
  type: int
  sample: 0
exists:
  description: Whether the StatefulSet exists.
  returned: in check mode
  type: bool
  sample: true
ready:
  description: Whether every ordinal is Ready now.
  returned: in check mode
  type: bool
  sample: false
would_wait_for:
  description: The ordinals a real run would wait for.
  returned: in check mode
  type: list
  elements: int
  sample: [2]
stuck:
  description: Ordinals that a real run would fail on at once, with their reason and message.
  returned: in check mode
  type: list
  elements: dict
  sample: [{"ordinal": 2, "pod": "etcd-2", "reason": "ImagePullBackOff", "message": "container etcd is waiting: ImagePullBackOff"}]
msg:
  description: What a real run would do.
  returned: in check mode
  type: str
  sample: "StatefulSet etcd/etcd: a real run would wait up to 300s for ordinals [2]"
ordinal:
  description: The ordinal that failed or was waited for at the timeout.
  returned: failure
  type: int
  sample: 1
pod:
  description: The pod of that ordinal.
  returned: failure
  type: str
  sample: etcd-1
reason:
  description:
    - Why the module failed, for example V(ImagePullBackOff), V(CrashLoopBackOff), V(Failed), V(Unschedulable),
      V(PersistentVolumeClaimPending), V(ControllerStalled), V(Timeout), V(StatefulSetNotFound).
  returned: failure
  type: str
  sample: ImagePullBackOff
message:
  description: The detailed message behind RV(reason) (container message, scheduler message, claim event).
  returned: failure, when an ordinal is stuck
  type: str
  sample: 'container etcd is waiting: ImagePullBackOff: Back-off pulling image "etcd:v9"'
pod_state:
  description: The pod's phase, node, conditions and container states in one line.
  returned: failure, when an ordinal is stuck or at the timeout
  type: str
  sample: "phase Pending; node node-2; conditions: PodScheduled=True, Ready=False (ContainersNotReady)"
events:
  description: The pod's last events (newest last), and for claim failures the claim's.
  returned: failure, when an ordinal is stuck or at the timeout
  type: list
  elements: str
  sample: ['2025-03-01T10:01:40Z Warning BackOff: Back-off pulling image "etcd:v9" (x7)']
hint:
  description: What to try.
  returned: failure, when an ordinal is stuck or the controller stalled
  type: str
  sample: check the image name and tag, and that the node can reach the registry (imagePullSecrets)
stall:
  description:
    - The step the StatefulSet controller owes the set and has not taken, see O(controller_stall_timeout).
    - With RV(reason) V(ControllerStalled), it was owed for longer than O(controller_stall_timeout); at a V(Timeout),
      it was still owed at the end.
  returned: failure, when the controller stalled, or at the timeout when it owed a step
  type: dict
  contains:
    action:
      description: V(observe) (the new spec), V(create) (the pod of an ordinal) or V(update) (replace a pod).
      type: str
      sample: create
    ordinal:
      description: The ordinal whose pod the controller has not created or replaced; null for V(observe).
      type: int
      sample: 1
    pod:
      description: That ordinal's pod; null for V(observe).
      type: str
      sample: etcd-1
    detail:
      description: The step in words.
      type: str
      sample: it has not created pod etcd-1 (ordinal 1), although every ordinal below it is Ready (OrderedReady)
    since:
      description: When the wait first saw the step owed, in UTC.
      type: str
      sample: "2025-03-01T10:01:40Z"
    since_seconds:
      description: The same, in seconds from the start of the module.
      type: float
      sample: 4.172
    seconds:
      description: For how long the step had been owed when the module failed.
      type: float
      sample: 60.004
    threshold:
      description: The O(controller_stall_timeout) in effect.
      type: int
      sample: 60
    generation:
      description: The set's C(metadata.generation).
      type: int
      sample: 2
    observed_generation:
      description: The set's C(status.observedGeneration).
      type: int
      sample: 2
"""

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ModuleFailure, TransientApiError
from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import check_set_options, set_argspec, start
from ansible_collections.kubess.stateful.plugins.module_utils._statefulset_waiter import StatefulSetWaiter
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api

# The module's own options, after the connection options and the set's name and namespace.
WAIT_ARG_SPEC = dict(
    replicas=dict(type="int"),
    timeout=dict(type="int", default=300),
    wait_for_set=dict(type="bool", default=False),
    wait_for_update=dict(type="bool", default=True),
    fail_fast=dict(type="bool", default=True),
    controller_stall_timeout=dict(type="int", default=60),
)

# Options passed to the waiter as they are.
WAITER_OPTIONS = ("replicas", "timeout", "wait_for_set", "wait_for_update", "fail_fast", "controller_stall_timeout")


def argspec():
    return set_argspec(WAIT_ARG_SPEC)


def validate(params):
    """The first value check that fails, as a message naming the option, or None: what types cannot say."""
    return check_set_options(params)


def main():
    module, api, started = start(argspec(), validate, build_api)
    params = module.params
    waiter = StatefulSetWaiter(
        api, params["name"], params["namespace"], started=started, **{k: params[k] for k in WAITER_OPTIONS}
    )
    try:
        result = waiter.check() if module.check_mode else waiter.wait()
    except ModuleFailure as err:
        module.fail_json(msg=err.msg, **err.result)
    except TransientApiError as err:
        module.fail_json(msg="The Kubernetes API could not be reached: {0}".format(err), **waiter.result_fields())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
