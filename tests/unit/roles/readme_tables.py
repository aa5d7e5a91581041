"""The variable table of each role's README, generated from the role's meta/argument_specs.yml.

Each variable is described once, in the argument spec; the README shows it between the markers below.

    python tests/unit/roles/readme_tables.py          # exit 1 and name the READMEs that differ
    python tests/unit/roles/readme_tables.py --write  # rewrite the tables (make docs)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
BEGIN = "<!-- BEGIN VARIABLES: generated from meta/argument_specs.yml by `make docs`; edit the spec, not this table -->"
END = "<!-- END VARIABLES -->"
MARKUP = re.compile(r"\b([CIOVMP]|RV|E)\(([^()]*(?:\([^()]*\))?[^()]*)\)")


def plain(text: str) -> str:
    """Ansible doc markup as Markdown: C(x), O(x), V(x), I(x), M(x), P(x#y) become `x`."""
    def repl(match):
        inner = match.group(2)
        if match.group(1) == "P":
            inner = inner.split("#")[0]
        if match.group(1) == "O" and "=" in inner:
            return f"`{inner}`"
        return f"`{inner.split(':')[-1] if match.group(1) == 'O' else inner}`"
    return MARKUP.sub(repl, text).replace("|", "\\|")


def default_text(spec: dict) -> str:
    if "default" not in spec:
        return "required" if spec.get("required") else ""
    value = spec["default"]
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return f"`{text}`" if text != "" else '`""`'


def table(spec_file: Path) -> str:
    options = yaml.safe_load(spec_file.read_text(encoding="utf-8"))["argument_specs"]["main"]["options"]
    rows = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name, spec in options.items():
        kind = spec.get("type", "str")
        if kind == "list" and spec.get("elements"):
            kind = f"list of {spec['elements']}"
        if spec.get("choices"):
            kind += " (" + ", ".join(f"`{c}`" for c in spec["choices"]) + ")"
        description = spec.get("description", "")
        if isinstance(description, list):
            description = " ".join(description)
        if spec.get("no_log"):
            description += " Never printed."
        rows.append(f"| `{name}` | {kind} | {default_text(spec)} | {plain(' '.join(description.split()))} |")
    return "\n".join(rows)


def render(readme: Path, spec_file: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    block = f"{BEGIN}\n\n{table(spec_file)}\n\n{END}"
    if BEGIN in text and END in text:
        return text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    raise SystemExit(f"{readme}: no {BEGIN!r} ... {END!r} markers")


def roles() -> list[Path]:
    return sorted(p for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--write", action="store_true", help="rewrite the READMEs")
    args = parser.parse_args()
    stale = []
    for role in roles():
        readme, spec = role / "README.md", role / "meta" / "argument_specs.yml"
        wanted = render(readme, spec)
        if wanted != readme.read_text(encoding="utf-8"):
            if args.write:
                readme.write_text(wanted, encoding="utf-8")
            else:
                stale.append(str(readme.relative_to(REPO)))
    if stale:
        print("variable tables out of date (run `make docs`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
