"""The module's argument handling: what main() hands the rollout and, with wait, the waiter, and how their results
and failures come back.

The module is run in-process with ``patch_module_args``; the connection, the rollout and the waiter are replaced by
recorders, so every test stops at the module's own boundary (the rollout and the waiter have their own tests).
"""

from __future__ import annotations

import pytest
from module_runner import WaiterStandIn, run_main, stop_at_exit

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ModuleFailure
from ansible_collections.kubess.stateful.plugins.modules import statefulset_rollout as module

ROLLED = {"changed": True, "exists": True, "partition_before": 3, "partition": 0, "update_revision": "web-2",
          "rolled": [{"ordinal": 2, "pod": "web-2", "forced": False, "seconds": 1.5}]}
WAITED = {"changed": False, "name": "web", "namespace": "demo", "replicas": 3, "ready": True, "partition": 0,
          "ordinals": [{"ordinal": n, "pod": f"web-{n}", "ready": True} for n in range(3)]}


class Calls:
    """What the stand-ins were built with and ran, in order; an error the waiter raises."""

    log: list = []
    waiter_error: ModuleFailure | None = None


class FakeRollout:
    def __init__(self, api, name, namespace, **options):
        Calls.log.append(("rollout", name, namespace, options))

    def run(self, check_mode=False):
        Calls.log.append(("rollout.run", check_mode))
        return dict(ROLLED)


class FakeWaiter(WaiterStandIn):
    def __init__(self, api, name, namespace, **options):
        Calls.log.append(("waiter", name, namespace, options))

    def _result(self, entry):
        Calls.log.append((entry,))
        if Calls.waiter_error is not None:
            raise Calls.waiter_error
        return dict(WAITED)


@pytest.fixture
def run(monkeypatch):
    stop_at_exit(monkeypatch)
    monkeypatch.setattr(module, "Rollout", FakeRollout)
    monkeypatch.setattr(module, "StatefulSetWaiter", FakeWaiter)
    monkeypatch.setattr(module, "build_api", lambda get_client, deadline: object())
    Calls.log, Calls.waiter_error = [], None
    return lambda args: run_main(module, args)


OPTIONS = {"timeout": 90, "fail_fast": False, "controller_stall_timeout": 30}


def test_without_wait_the_rollouts_result_is_returned_and_nothing_waits(run):
    outcome, result = run(dict(OPTIONS, name="web", namespace="demo"))
    assert outcome == "exit", result
    assert {k: result[k] for k in ROLLED} == ROLLED and "ordinals" not in result and "rollout" not in result
    assert Calls.log == [("rollout", "web", "demo", dict(OPTIONS, wait_again=True)), ("rollout.run", False)]


def test_with_wait_the_set_is_waited_for_after_the_rollout_with_the_same_options(run):
    outcome, result = run(dict(OPTIONS, name="web", namespace="demo", wait=True))
    assert outcome == "exit", result
    assert Calls.log == [("rollout", "web", "demo", dict(OPTIONS, wait_again=False)), ("rollout.run", False),
                         ("waiter", "web", "demo", OPTIONS), ("wait",)]
    # The waiter's fields at the top (as statefulset_wait returns them), the rollout's under 'rollout', its 'changed'.
    assert result["ordinals"] == WAITED["ordinals"] and result["ready"] is True
    assert result["rollout"] == ROLLED and result["changed"] is True


def test_with_wait_in_check_mode_both_only_look(run):
    outcome, result = run(dict(name="web", namespace="demo", wait=True, _ansible_check_mode=True))
    assert outcome == "exit", result
    assert [c[0] for c in Calls.log] == ["rollout", "rollout.run", "waiter", "check"]
    assert Calls.log[1] == ("rollout.run", True)


def test_a_failed_wait_says_why_and_what_the_rollout_changed(run):
    Calls.waiter_error = ModuleFailure("web-1 is not Ready: CrashLoopBackOff", ordinal=1, reason="CrashLoopBackOff")
    outcome, result = run(dict(name="web", namespace="demo", wait=True))
    assert outcome == "fail"
    assert result["msg"] == "web-1 is not Ready: CrashLoopBackOff"
    assert (result["ordinal"], result["reason"], result["changed"]) == (1, "CrashLoopBackOff", True)
    assert result["rollout"] == ROLLED


@pytest.mark.parametrize("args, words", [
    ({"wait": "sometimes"}, "wait"),
    ({"timeout": 0}, "timeout must be a positive number"),
])
def test_bad_input_is_refused_naming_the_option(run, args, words):
    outcome, result = run(dict({"name": "web", "namespace": "demo"}, **args))
    assert outcome == "fail" and words in result["msg"], result
    assert Calls.log == []
