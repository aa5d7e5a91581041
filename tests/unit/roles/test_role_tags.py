"""The nfs_server role's step tags select the step's tasks: `--tags nfs_server_install` lists the installation's
tasks (and the input checks, which run whatever the tags), not only an include that would run nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PLAY = [{"hosts": "localhost", "gather_facts": False, "roles": ["kubess.stateful.nfs_server"]}]


def listed(tags: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(json.dumps(PLAY), encoding="utf-8")
        done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
                               "--list-tasks", "--tags", tags, str(playbook)],
                              capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.strip() for line in done.stdout.splitlines() if "TAGS:" in line]


@pytest.mark.parametrize("tag, inner", [
    ("nfs_server_install", "Install the NFS server packages (Debian family)"),
    ("nfs_server_directories", "Create one directory per volume"),
    ("nfs_server_exports", "Write the kernel export"),
])
def test_a_step_tag_selects_the_tasks_of_that_step_and_the_input_checks(tag, inner):
    tasks = listed(tag)
    # A task of the step's own file, not only the step's entry in main.yml.
    assert any(inner in t and tag in t for t in tasks), tasks
    # The input checks (and the facts the other steps use) run whatever the tags; they change nothing.
    assert any("Check the nfs_server input" in t for t in tasks), tasks
    others = {"nfs_server_install", "nfs_server_directories", "nfs_server_exports", "nfs_server_service"} - {tag}
    assert not [t for t in tasks if any(o in t for o in others)], tasks
