"""Each role's README shows the variables of its argument spec, generated: a check that fails when they drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("readme_tables", Path(__file__).with_name("readme_tables.py"))
readme_tables = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(readme_tables)


@pytest.mark.parametrize("role", readme_tables.roles(), ids=lambda p: p.name)
def test_readme_table_is_generated_from_the_argument_spec(role):
    readme = role / "README.md"
    assert readme_tables.render(readme, role / "meta" / "argument_specs.yml") == readme.read_text(encoding="utf-8"), (
        f"{readme}: the variable table differs from meta/argument_specs.yml; run `make docs`")


def test_every_variable_of_the_spec_is_in_the_table_and_the_defaults():
    import yaml
    for role in readme_tables.roles():
        options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
        defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
        table = readme_tables.table(role / "meta" / "argument_specs.yml")
        for name in options:
            assert f"| `{name}` |" in table
        assert set(defaults) == set(options), f"{role.name}: defaults and argument spec differ: {set(defaults) ^ set(options)}"


def test_markup_becomes_markdown():
    assert readme_tables.plain("C(a) O(pxc_replicas) V(x) P(kubess.stateful.k8s_quantity#filter) a|b") == \
        "`a` `pxc_replicas` `x` `kubess.stateful.k8s_quantity` a\\|b"
