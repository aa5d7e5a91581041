# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Running a role's Jobs (kubess.stateful.job_run): a Job of the same name that cannot serve (it failed, is being
deleted, or was made for something else: an annotation of the definition, or the digest of its spec, differs) is
deleted first; every Job that is not there is applied (server-side apply), carrying the digest of its spec; then
every Job is waited for as kubess.stateful.job_wait waits. A Job that is there and can serve (running, or complete)
is waited for as it is: its pod template cannot change."""

import hashlib
import json

from ansible_collections.kubess.stateful.plugins.module_utils._delete import Deletion
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._job_wait import JOBS, end_of
from ansible_collections.kubess.stateful.plugins.module_utils._watch import UntilDeadline

APPLY_PATCH = "application/apply-patch+yaml"
# The digest of the spec a Job was applied from: a Job of the same name made from another spec (another membership,
# image or command) does not serve. A Job without it (applied by other means) is judged by its annotations alone.
SPEC_DIGEST = "kubess.io/job-spec-sha256"


def spec_digest(definition):
    """The SHA-256 of the definition's spec, as canonical JSON."""
    text = json.dumps(definition.get("spec") or {}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def definition_problem(index, definition, namespace):
    """What is wrong with ``definitions[index]``, as a message naming it, or None."""
    where = "definitions[{0}]".format(index)
    if not isinstance(definition, dict):
        return "{0} must be a mapping (a Job manifest), got {1!r}".format(where, definition)
    if (definition.get("apiVersion"), definition.get("kind")) != ("batch/v1", "Job"):
        return "{0} must be a batch/v1 Job, got {1}/{2}".format(where, definition.get("apiVersion"), definition.get("kind"))
    meta = definition.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"].strip():
        return "{0}.metadata.name must be a non-empty string".format(where)
    if meta.get("namespace") not in (None, namespace):
        return "{0} ({1}) is in namespace {2}, not {3}".format(where, meta["name"], meta["namespace"], namespace)
    if not isinstance(meta.get("annotations") or {}, dict):
        return "{0}.metadata.annotations must be a mapping".format(where)
    return None


def stale_reason(live, definition):
    """Why the Job ``live`` cannot serve for ``definition``, or None when it can (or there is none)."""
    if live is None:
        return None
    meta = live.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return "it is being deleted"
    end = end_of(live)
    if end and end[0] == "Failed":
        return "it failed" + (" ({0})".format(end[1]) if end[1] else "")
    have = meta.get("annotations") or {}
    want = definition["metadata"].get("annotations") or {}
    for key in sorted(want):
        if have.get(key) != want[key]:
            return "its annotation {0} is {1!r}, not {2!r}".format(key, have.get(key), want[key])
    if have.get(SPEC_DIGEST) not in (None, spec_digest(definition)):
        return "it was made from another spec (another membership, image, command or placement)"
    return None


class JobRun(UntilDeadline):
    """Run the Jobs ``definitions`` under ``field_manager``, then ``wait`` (the JobWait for their names, whose API,
    namespace and deadline the run shares; see the module docstring)."""

    def __init__(self, wait, definitions, field_manager):
        self.wait = wait
        self.definitions = definitions
        self.field_manager = field_manager
        self.api, self.namespace, self.deadline, self.clock = wait.api, wait.namespace, wait.deadline, wait.clock
        self.path = JOBS.format(wait.namespace)

    def _apply(self, definition, dry_run=False):
        annotations = dict(definition["metadata"].get("annotations") or {}, **{SPEC_DIGEST: spec_digest(definition)})
        body = dict(definition, metadata=dict(definition["metadata"], namespace=self.namespace, annotations=annotations))
        query = [("fieldManager", self.field_manager), ("force", "true")] + ([("dryRun", "All")] if dry_run else [])
        # As text: the client serializes only JSON content types itself (JSON is YAML).
        self._retry(lambda: self.api.send("PATCH", self.path + "/" + body["metadata"]["name"], body=json.dumps(body),
                                          query=query, content_type=APPLY_PATCH))

    def plan(self):
        """``(definition, live Job or None, why it cannot serve or None)`` for each definition, in order."""
        out = []
        for definition in self.definitions:
            name = definition["metadata"]["name"]
            live = self._retry(lambda n=name: self.api.list(self.path + "/" + n), gone_ok=True)
            out.append((definition, live, stale_reason(live, definition)))
        return out

    def run(self, check_mode=False):
        started = self.clock()
        plan = self.plan()
        deleted = [dict(name=d["metadata"]["name"], reason=why) for d, _live, why in plan if why]
        to_start = [d for d, live, why in plan if live is None or why]
        fields = dict(changed=bool(to_start), started=[d["metadata"]["name"] for d in to_start], deleted=deleted)
        if check_mode:
            # A Job that is not there is applied as a dry run (the API checks it); one that would replace a Job
            # still there cannot be (its template is immutable), and is reported only.
            for definition, live, _why in plan:
                if live is None:
                    self._apply(definition, dry_run=True)
            return dict(fields, jobs=[], seconds=0.0)
        try:
            if deleted:
                Deletion(self.api, self.namespace, [dict(api_version="batch/v1", kind="Job", name=entry["name"])
                                                    for entry in deleted],
                         "Foreground", True, self.deadline, self.clock).run()
            for definition in to_start:
                self._apply(definition)
            result = self.wait.run()
        except ModuleFailure as err:
            # What was deleted and started before the failure is said with it.
            err.result.update(fields)
            raise
        except ApiFailure as err:
            raise ModuleFailure("The Jobs in namespace {0}: the API refused a request: {1}".format(self.namespace, err),
                                **fields) from None
        result.update(fields)
        result["seconds"] = round(self.clock() - started, 3)
        return result
