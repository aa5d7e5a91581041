"""Render a role's variables as Ansible does, from the role's own defaults and vars, in a one-task play."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def render(role: str, name: str, extra: dict | None = None, facts: dict | None = None):
    """The value of the variable `name` of `role`, with `extra` given as extra variables (strings as a user passes
    them on a command line, or lists and mappings), and
    `facts` as play variables (facts a task of the role would set). The role's templates and files are found as in the role."""
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ROOT / "roles" / role / "defaults" / "main.yml"), str(ROOT / "roles" / role / "vars" / "main.yml")],
        "vars": facts or {},
        "tasks": [{"name": "show", "ansible.builtin.debug": {"var": name}}],
    }]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1")
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    if extra:
        # Extra variables win over the role's defaults and vars; strings stay strings, as on a command line.
        argv += ["-e", json.dumps(extra)]
    with tempfile.TemporaryDirectory() as tmp:
        # The play's own directory holds the role's templates and files, so that the role's lookups find them.
        for kind in ("templates", "files"):
            if (ROOT / "roles" / role / kind).is_dir():
                (Path(tmp) / kind).symlink_to(ROOT / "roles" / role / kind)
        (Path(tmp) / "play.yml").write_text(json.dumps(play), encoding="utf-8")
        done = subprocess.run(argv + [str(Path(tmp) / "play.yml")], env=env, capture_output=True, text=True,
                              check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"][name]


RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}


def backup_pod(made: dict, app_name: str | None = None, deadline: int | None = 3600) -> dict:
    """The pod spec of a role's backup CronJob or Job, once checked for what every role's backup pod is: never
    retried, ended by its deadline (when given), labelled as the role's backup (when named), run with restricted
    containers (init containers too), never restarted, without the namespace's service links."""
    job_spec = (made["spec"]["jobTemplate"] if made["kind"] == "CronJob" else made)["spec"]
    assert job_spec["backoffLimit"] == 0
    if deadline is not None:
        assert job_spec["activeDeadlineSeconds"] == deadline
    labels = job_spec["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "backup"
    if app_name is not None:
        assert labels["app.kubernetes.io/name"] == app_name
    spec = job_spec["template"]["spec"]
    assert spec["restartPolicy"] == "Never" and spec["enableServiceLinks"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    for container in spec.get("initContainers", []) + spec["containers"]:
        assert container["securityContext"] == RESTRICTED_CONTAINER, container["name"]
    return spec
