"""Run a module's main() in-process, as a task runs it, and get what it ended with: ``("exit", result)`` or
``("fail", result with msg)``. exit_json and fail_json are replaced (through ``monkeypatch``) so that main() stops
there instead of leaving the process."""

from __future__ import annotations

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class WaiterStandIn:
    """The entry points of StatefulSetWaiter, for a stand-in: wait() and check() both answer with _result(entry)."""

    def _result(self, entry):
        raise NotImplementedError

    def wait(self):
        return self._result("wait")

    def check(self):
        return self._result("check")


class Exited(Exception):
    """exit_json was called: args[0] holds its result."""


class Failed(Exception):
    """fail_json was called: args[0] holds its result, msg included."""


def stop_at_exit(monkeypatch) -> None:
    def exit_json(self, **result):
        raise Exited(result)

    def fail_json(self, msg=None, **result):
        raise Failed(dict(result, msg=msg))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run_main(module, args: dict) -> tuple[str, dict]:
    with patch_module_args(args):
        try:
            module.main()
        except Exited as done:
            return "exit", done.args[0]
        except Failed as failed:
            return "fail", failed.args[0]
    raise AssertionError("main() returned without exit_json or fail_json")
