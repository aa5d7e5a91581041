#!/usr/bin/env bash
# ansible-test sanity on the collection. ansible-test must run from a directory that really is
# .../ansible_collections/kubess/stateful (a link does not do), so the files git knows are copied
# to such a tree in the cache and tested there. Its tool venvs (--venv) are kept in the cache too.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${KUBESS_CACHE_DIR:-$HOME/.cache/kubess-stateful}
tree=$cache/sanity/ansible_collections/kubess/stateful
venv_bin=$(dirname "$(command -v ansible-test)")
mkdir -p "$tree"
cd "$repo"
# Tracked files plus new ones not ignored: what a commit would hold.
git ls-files -z --cached --others --exclude-standard | rsync -a --delete --from0 --files-from=- ./ "$tree/"
# rsync --files-from never deletes: drop what is no longer in the list.
(cd "$tree" && find . -type f -not -path './tests/output/*' | sed 's|^\./||' | sort) >"$cache/sanity/have.txt"
git ls-files --cached --others --exclude-standard | sort >"$cache/sanity/want.txt"
comm -23 "$cache/sanity/have.txt" "$cache/sanity/want.txt" | (cd "$tree" && xargs -r rm -f)
# ansible-test bootstraps pip in its venvs with a script from a host this machine cannot reach:
# give it the stand-in that bootstraps from Python's bundled pip and PyPI instead.
at_dir=$("$venv_bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" "$at_dir/_internal/python_requirements.py" | head -n 1)
mkdir -p "$HOME/.ansible/test/cache"
cp "$repo/tools/ci/get_pip.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
# The collections it depends on, beside it in the same ansible_collections tree (import and validate-modules
# load kubernetes.core's module_utils and doc fragments from there).
site=$("$venv_bin/python" -c 'import ansible_collections.kubernetes.core as m, os; print(os.path.dirname(os.path.dirname(list(m.__path__)[0])))')
mkdir -p "$cache/sanity/ansible_collections/kubernetes/core"
rsync -a --delete "$site/kubernetes/core/" "$cache/sanity/ansible_collections/kubernetes/core/"
cd "$tree"
# ansible-test keeps its per-test venvs under ~/.ansible/test/venv, which survives between runs.
"$venv_bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
