# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way for every role to check its input: a list of rules in, one message per broken rule out.

The rules themselves (DNS names, labels, quantities, ports, images) are the tests of
``plugins/test/k8s_names.py``; this filter applies them by name to a role's variables, plus the rules across
variables that a role states as ``{var, ok, msg}``, so that a role checks everything in one task and every
message starts with the variable to change. The documentation is in input_problems.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.test.k8s_names import RULES

_KEYS = ("var", "value", "test", "ok", "msg", "when", "secret", "allow_empty")


def _shown(value):
    return repr(value) if isinstance(value, str) else str(value)


def _check(index, rule):
    if not isinstance(rule, dict) or "var" not in rule:
        raise AnsibleFilterError(f"input rule {index} must be a mapping with 'var', got {rule!r}")
    if not rule.get("when", True):
        return None
    var = rule["var"]
    if "ok" in rule:
        msg = str(rule.get("msg") or "is not valid")
        # A message may go on from the variable's name itself: ".requests.cpu must ...", ", x and y must ...".
        return None if rule["ok"] else f"{var}{'' if msg[:1] in ',.:=' else ' '}{msg}"
    test = rule.get("test")
    if test not in RULES:
        raise AnsibleFilterError(f"input rule {index} ({var}) names an unknown test {test!r}; known: {sorted(RULES)}")
    value = rule.get("value")
    if rule.get("allow_empty") and value in ("", None, [], {}):
        return None
    args = {k: v for k, v in rule.items() if k not in _KEYS}
    problem = RULES[test](value, **args)
    if problem is None:
        return None
    got = "" if rule.get("secret") else f", got {_shown(value)}"
    return f"{var} {problem}{got}"


def input_problems(rules):
    """One message per rule that the input breaks, in the order of the rules; empty when all hold."""
    if not isinstance(rules, list):
        raise AnsibleFilterError(f"input_problems takes a list of rules, got {type(rules).__name__}")
    return [problem for problem in (_check(i, r) for i, r in enumerate(rules)) if problem]


class FilterModule:
    """kubess.stateful input checks."""

    def filters(self):
        return {"input_problems": input_problems}
