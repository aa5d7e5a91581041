# kubess.stateful — every set-up step a fresh machine needs is a target here.
#   make demo    set up, start the local cluster, run the site playbook on it, print a summary
#   make test    set up, then unit tests, sanity, lint and the integration tests on the local cluster
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

REPO := $(CURDIR)
KUBESS_CACHE_DIR ?= $(HOME)/.cache/kubess-stateful
export KUBESS_CACHE_DIR
PYTHON ?= python3

# The venv lives in the cache, keyed by the lock file, so a warm run installs nothing.
REQ_HASH := $(shell sha256sum requirements.txt | cut -c1-12)
VENV := $(KUBESS_CACHE_DIR)/venv-$(REQ_HASH)
VENV_OK := $(VENV)/.installed
BIN := $(VENV)/bin

# The checkout is importable as kubess.stateful through a link in the cache (one per checkout).
COLL_ROOT := $(KUBESS_CACHE_DIR)/collections/$(shell printf '%s' '$(REPO)' | sha256sum | cut -c1-12)
COLL_LINK := $(COLL_ROOT)/ansible_collections/kubess/stateful

K8S_BIN := $(shell tools/localcluster/build.sh --print | sed -n 's/^K8S_BIN=//p')
export KUBECONFIG := $(REPO)/.localcluster/kubeconfig
export ANSIBLE_COLLECTIONS_PATH := $(COLL_ROOT)
export PATH := $(BIN):$(K8S_BIN):$(PATH)
export ANSIBLE_CONFIG := $(REPO)/ansible.cfg

.PHONY: help setup venv collection-link apt-deps cluster-build cluster-up cluster-down cluster-status \
	node-build node-up node-down node-status node-tests e2e e2e-down \
	demo demo-deps demo-down test unit sanity lint integration molecule bench build docs clean

help:
	@echo "make demo | demo-down | test | cluster-up | cluster-down | cluster-status | node-up | node-down | node-status | bench | build | unit | sanity | lint | integration | node-tests"

setup: venv collection-link apt-deps

venv: $(VENV_OK)
	@ln -sfn $(VENV) .venv

$(VENV_OK): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

collection-link:
	@mkdir -p $(dir $(COLL_LINK))
	@ln -sfn $(REPO) $(COLL_LINK)

# Debian packages the tests use: the userspace NFS server and a real NFS client; for the real node, its
# network tools (iptables, conntrack), what runc (libseccomp) and the node's FUSE NFS client (libnfs, libfuse3)
# are built with, and what the image builder needs (mmdebstrap, setcap).
APT_PACKAGES := nfs-ganesha nfs-ganesha-vfs libnfs-utils rsync shellcheck \
	iptables conntrack gcc libc6-dev pkg-config libseccomp-dev libnfs-dev libfuse3-dev fuse3 mmdebstrap libcap2-bin
apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "[setup] apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

cluster-build:
	tools/localcluster/build.sh control-plane

cluster-up:
	tools/localcluster/cluster.sh up

cluster-down:
	tools/localcluster/cluster.sh down

cluster-status:
	tools/localcluster/cluster.sh status

# The real node (tools/localcluster/node.sh): its binaries, its FUSE NFS client and the images it runs.
node-build: setup
	tools/localcluster/build.sh
	tools/localcluster/nfs-fuse/build.sh
	tools/images/build.sh

node-up: node-build
	tools/localcluster/node.sh up

node-down:
	tools/localcluster/node.sh down

node-status:
	tools/localcluster/node.sh status

node-tests: node-build
	cd $(COLL_LINK) && $(BIN)/python -m pytest -q tests/node $(PYTEST_ARGS)

# The whole stack in real containers on the real node (tests/e2e): the site playbook with inventories/e2e, then checks
# from inside the pods and through the Services, faults, and a second run. The stack stays up; e2e-down stops it all.
e2e: node-up demo-deps
	cd $(COLL_LINK) && $(BIN)/python -m pytest -q tests/node
	cd $(COLL_LINK) && $(BIN)/python -m pytest -q tests/e2e $(PYTEST_ARGS)

# The node first (it unmounts its NFS volumes while the server still answers), then the NFS server.
e2e-down: venv collection-link
	tools/localcluster/cluster.sh down
	$(BIN)/ansible -i inventories/e2e/hosts.yml nfs_servers -m ansible.builtin.include_role \
	  -a "name=kubess.stateful.nfs_server tasks_from=stop"

# The etcd TLS tests run the real etcd and etcdctl of the control plane's build.
unit: venv collection-link cluster-build
	cd $(COLL_LINK) && $(BIN)/python -m pytest -q tests/unit

sanity: venv collection-link
	tools/ci/sanity.sh

lint: venv collection-link
	$(BIN)/ansible-lint --profile production
	$(BIN)/yamllint -s .
	$(BIN)/antsibull-changelog lint
	cd $(COLL_LINK) && $(BIN)/antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck .

integration: setup cluster-build
	cd $(COLL_LINK) && $(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

# The real node's builds (its Go binaries, the FUSE NFS client, the images) would take a cold run past 80 minutes:
# its tests run with the end-to-end suite (make e2e).
test: setup
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory integration

# The demo's report (kubess.stateful.stack_info) and its picture (Graphviz) go to the cache, outside the checkout.
DEMO_OUT := $(KUBESS_CACHE_DIR)/demo
demo-deps:
	@dpkg -s graphviz >/dev/null 2>&1 || { echo "[setup] apt-get install graphviz"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null; }

demo: setup demo-deps cluster-up
	$(BIN)/ansible-playbook -i inventories/local/hosts.yml playbooks/site.yml
	@mkdir -p $(DEMO_OUT)
	$(BIN)/ansible-playbook -i inventories/local/hosts.yml playbooks/stack_info.yml -e kubess_stack_info_file=$(DEMO_OUT)/stack.json
	$(BIN)/python tools/demo_summary.py $(DEMO_OUT)/stack.json --dot $(DEMO_OUT)/stack.dot --svg $(DEMO_OUT)/stack.svg

# Stops what the demo started, by PID: the NFS server (ganesha) and the local cluster. Data directories stay.
demo-down: venv collection-link
	$(BIN)/ansible -i inventories/local/hosts.yml nfs_servers -m ansible.builtin.include_role \
	  -a "name=kubess.stateful.nfs_server tasks_from=stop"
	tools/localcluster/cluster.sh down

bench: setup cluster-up
	$(BIN)/python benchmarks/bench_wait.py
	$(BIN)/python benchmarks/bench_site.py

# The variable tables of the role READMEs, from meta/argument_specs.yml (a unit test fails when they drift).
docs: venv
	$(BIN)/python tests/unit/roles/readme_tables.py --write

build: venv
	$(BIN)/ansible-galaxy collection build --force --output-path .build

clean:
	rm -rf .build tests/output .pytest_cache
