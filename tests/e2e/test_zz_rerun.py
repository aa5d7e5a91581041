"""Last: a second run of the site playbook over the running stack, after the faults, changes nothing."""

from __future__ import annotations

from conftest import run_site


def test_a_second_site_run_changes_nothing(stack):
    env = dict(stack.node.cluster.env)
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    run = run_site(env, "rerun")
    print(f"\nsite playbook rerun: rc={run.returncode} in {run.seconds:.1f} s, changed={run.changed} "
          f"(first run {stack.first_run.seconds:.1f} s)")
    assert run.returncode == 0, run.tail()
    assert run.recap, run.tail()
    assert run.changed == 0, f"changed={run.changed}, log {run.log}"
