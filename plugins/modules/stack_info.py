#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: stack_info
short_description: Report the state of the stack's StatefulSets, ordinal by ordinal, down to the NFS paths
version_added: 0.2.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Reads, in one namespace, the StatefulSets the collection's roles made (or those named in O(names)) and returns,
    for each ordinal, its pod, node, whether it is Ready and since when, its revision and whether it is the set's
    update revision, its restarts, and each of its claims with the PersistentVolume bound to it and that volume's NFS
    server and path. Ordinals above the set's size that still have a claim (a member removed, its data kept) are
    listed too, with O(ignore:in_set=false).
  - Also returns the Deployments and the autoscaling/v2 HorizontalPodAutoscalers of the roles, with each autoscaler's
    current and desired replicas and CPU utilisation.
  - For each set with backups, its backup CronJob's schedule and times, its newest backup Job and the newest that
    succeeded, with the snapshot's name; for a Galera set with the binary log archive, each member's C(binlog-archive)
    container (Ready, restarts, and the file and directory it copies, from its log).
  - With O(members=true), asks the members themselves, through C(pods/exec). etcd returns the member list (name, id,
    learner, healthy, leader), with C(etcdctl) run in a Ready member's container. Galera returns what each member's
    server says of itself (C(wsrep_local_state_comment), the cluster's status and size, and its position, that is the
    cluster's uuid and its last committed seqno), read as the role's readiness probe reads it (the monitor user over
    the local socket, its password from the container's environment, never out of the container), and the phase and
    C(safe_to_bootstrap) its entrypoint published in C(/run/kubess). A member whose server does not answer (waiting
    to bootstrap, initialising) has a null C(state) and the position it published when it started.
  - Reads only; the result is the same in check mode.
options:
  namespace:
    description: Namespace of the stack.
    type: str
    required: true
  names:
    description:
      - Names of the StatefulSets to report. Empty reports every StatefulSet labelled
        C(app.kubernetes.io/managed-by=kubess.stateful).
    type: list
    elements: str
    default: []
  members:
    description: Also read each etcd and Galera member's own view (needs C(create) on C(pods/exec)).
    type: bool
    default: false
  metrics_timeout:
    description:
      - How long, in seconds, to wait for each autoscaler's first CPU reading (a new HorizontalPodAutoscaler has none
        for about a minute), watching it. V(0) does not wait. An autoscaler still without one is reported with a
        null C(cpu_utilization.current), and the module does not fail.
    type: int
    default: 0
  timeout:
    description: How long, in seconds, the module may take (reads are retried while the API cannot be reached).
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    details: It never changes anything, so check mode returns the same result.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
notes:
  - The credentials need C(list) on C(statefulsets) and C(deployments) (apps), C(pods), C(persistentvolumeclaims) and
    C(horizontalpodautoscalers) (autoscaling), C(jobs) and C(cronjobs) (batch) in the namespace, C(get) on
    C(pods/log) (the file of a scheduled backup and what the binary log archive copies; without it they are null),
    and C(list) on C(persistentvolumes)
    (cluster scope).
  - An etcd or Galera member that cannot be asked is reported with an C(error), and does not fail the module.
seealso:
  - module: kubess.stateful.statefulset_wait
  - module: kubess.stateful.etcd_member
"""

EXAMPLES = r"""
- name: Read the stack
  kubess.stateful.stack_info:
    namespace: kubess
    members: true
  register: stack

- name: Show where each etcd member keeps its data
  ansible.builtin.debug:
    msg: "{{ item.pod }} on {{ item.node }}: {{ item.claims | map(attribute='nfs') | join(', ') }}"
  loop: "{{ (stack.statefulsets | selectattr('kind', '==', 'etcd') | first).ordinals }}"
"""

RETURN = r"""
statefulsets:
  description: Each StatefulSet, by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the StatefulSet.
      type: str
    kind:
      description: What it runs, from the roles' labels.
      type: str
      sample: etcd
      choices: [etcd, galera, mysql, other]
    flavor:
      description: The Galera flavour (C(kubess.io/flavor)), else null.
      type: str
    replicas:
      description: The set's size.
      type: int
      sample: 3
    ready_replicas:
      description: Ready pods, as the StatefulSet's status counts them.
      type: int
      sample: 3
    current_revision:
      description: The set's current revision.
      type: str
      sample: pxc-7d9f8c6b5d
    update_revision:
      description: The revision pods move to.
      type: str
      sample: pxc-7d9f8c6b5d
    partition:
      description: The rolling update's partition (ordinals below it keep their revision).
      type: int
      sample: 0
    pod_management_policy:
      description: V(OrderedReady) or V(Parallel).
      type: str
    generation_observed:
      description: Whether the controller has seen the set's last change.
      type: bool
    ordinals:
      description: Each ordinal of the set, and each above it that still has a pod or a claim.
      type: list
      elements: dict
      contains:
        ordinal:
          description: The ordinal; its pod is C(<name>-<ordinal>).
          type: int
          sample: 0
        in_set:
          description: Whether the ordinal is below the set's size.
          type: bool
        pod:
          description: The pod's name, or null when there is no pod.
          type: str
        phase:
          description: The pod's phase.
          type: str
        node:
          description: The node the pod runs on.
          type: str
        ready:
          description: Whether the pod is Ready.
          type: bool
        ready_since:
          description: When the pod last became Ready (RFC 3339), or null.
          type: str
        revision:
          description: The pod's revision (C(controller-revision-hash)).
          type: str
        updated:
          description: Whether the pod runs the set's update revision.
          type: bool
        restarts:
          description: The restarts of the pod's containers.
          type: int
        waiting:
          description: "The first container waiting and why, as C(<container>: <reason>), or null."
          type: str
        claims:
          description: The pod's claims (one per volume claim template).
          type: list
          elements: dict
          contains:
            name:
              description: The claim's name.
              type: str
            phase:
              description: The claim's phase (V(Bound), V(Pending)), or null when there is no claim yet.
              type: str
            volume:
              description: The PersistentVolume bound to it.
              type: str
            capacity:
              description: The claim's capacity.
              type: str
            nfs:
              description: The volume's NFS C(server:path), or null for a volume of another kind.
              type: str
            reclaim_policy:
              description: The volume's reclaim policy.
              type: str
    etcd:
      description: With O(members=true), for an etcd set, the members as etcd lists them, or an C(error).
      type: dict
      returned: when O(members=true) and kind is V(etcd)
      contains:
        members:
          description: Each member (name, id, learner, started, healthy, leader).
          type: list
          elements: dict
        error:
          description: Why the members could not be read.
          type: str
    galera:
      description: With O(members=true), for a Galera set, each member's state and position.
      type: dict
      returned: when O(members=true) and kind is V(galera)
      contains:
        members:
          description:
            - Each member (name, state, cluster_status, cluster_size, uuid, seqno, phase, safe_to_bootstrap, error).
          type: list
          elements: dict
    binlog_archive:
      description:
        - For a Galera set with the binary log archive (the pxc role's O(kubess.stateful.pxc#role:main:pxc_backup_binlogs)),
          each member's C(binlog-archive) container, or null when no pod of the set has one.
        - V(file) and V(directory) are what the container copies, from its log - the member's binary log file it
          started from (it goes on to the next files without a word) and where it writes - when its last log line
          says it started copying; null when that line is a stop, a failure or a retry, or the log cannot be read.
          V(last_line) is that line.
      type: list
      elements: dict
      returned: always
      contains:
        pod:
          description: The member's pod.
          type: str
        ready:
          description: Whether the container is Ready (it runs).
          type: bool
        restarts:
          description: How many times the container was restarted.
          type: int
        file:
          description: The member's binary log file it started copying from.
          type: str
        directory:
          description: Where it writes that file on the backup volume (a generation directory under C(/backup/binlogs)).
          type: str
        last_line:
          description: Its last log line.
          type: str
    backup:
      description:
        - The set's backups (the objects its role labels C(app.kubernetes.io/component=backup), see O(kubess.stateful.etcd#role:main:etcd_backup)),
          or null when it has neither a backup CronJob nor a backup Job.
      type: dict
      returned: always
      contains:
        cronjob:
          description: Name of the backup CronJob, or null (snapshots on demand only).
          type: str
        schedule:
          description: Its schedule.
          type: str
        time_zone:
          description: The schedule's time zone.
          type: str
        suspended:
          description: Whether the CronJob is suspended.
          type: bool
        last_schedule:
          description: When the CronJob last started a backup Job.
          type: str
        last_successful:
          description: When a Job of the CronJob last succeeded.
          type: str
        last:
          description:
            - The newest backup Job, scheduled or on demand (job, started, completed, outcome V(succeeded),
              V(failed) or V(running), file, pod), or null.
          type: dict
        last_succeeded:
          description:
            - The newest backup Job that succeeded, in the same shape; C(file) is the snapshot's name on the backup
              volume, from the Job's annotation (on demand) or its store container's log (scheduled), null when
              neither can be read any more.
          type: dict
deployments:
  description: The roles' Deployments (name, replicas, ready_replicas, updated_replicas).
  returned: always
  type: list
  elements: dict
autoscalers:
  description:
    - The roles' HorizontalPodAutoscalers (name, target, min_replicas, max_replicas, current_replicas,
      desired_replicas, cpu_utilization with current and target percent of the pods' requests).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import finish, start, with_auth
from ansible_collections.kubess.stateful.plugins.module_utils._stack import collect
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api

STACK_ARG_SPEC = dict(
    namespace=dict(type="str", required=True),
    names=dict(type="list", elements="str", default=[]),
    members=dict(type="bool", default=False),
    metrics_timeout=dict(type="int", default=0),
    timeout=dict(type="int", default=60),
)


def check_options(params):
    """The first option that is wrong, as a message, or None."""
    if params["timeout"] <= 0:
        return "timeout must be a positive number of seconds, got {0}".format(params["timeout"])
    if params["metrics_timeout"] < 0:
        return "metrics_timeout must be 0 (no wait) or a positive number of seconds, got {0}".format(
            params["metrics_timeout"])
    if not params["namespace"].strip():
        return "namespace must not be empty"
    if any(not name.strip() for name in params["names"]):
        return "names must not hold an empty name"
    return None


def main():
    module, api, started = start(with_auth(STACK_ARG_SPEC), check_options, build_api)
    params = module.params
    metrics = started + params["metrics_timeout"] if params["metrics_timeout"] else None

    def read():
        return dict(changed=False, **collect(api, params["namespace"], params["names"], params["members"],
                                             started + params["timeout"], metrics))

    finish(module, read, "namespace {0}".format(params["namespace"]))


if __name__ == "__main__":
    main()
