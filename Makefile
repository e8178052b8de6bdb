# switchyard: `make run` starts the proxy with the repo's routes.ts and demo backends;
# `make test` installs what it needs and runs every suite. See README.md.
SHELL := /bin/bash
BIN := node_modules/.bin
SRC := $(shell find src -name '*.ts' ! -name '*.test.ts') package.json
UNIT := $(shell find src -name '*.test.ts' | sort)

.PHONY: install check lint fmt gen build run test unit e2e bench soak fuzz flood clean deno-compile

install: node_modules/.install-stamp
node_modules/.install-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

gen: src/cli/types-source.ts
src/cli/types-source.ts: src/config/types.ts src/cli/gen-types-source.ts | install
	$(BIN)/tsx src/cli/gen-types-source.ts

# Type checks for the three entry points: the Bun binary and the Node bundle (tsc with Bun and
# Node types) and the Deno entry (deno check).
check: install gen
	$(BIN)/tsc -p tsconfig.json
	$(BIN)/deno check --quiet src/main.ts

lint: install
	$(BIN)/biome check src tests routes.ts

fmt: install
	$(BIN)/biome check --write src tests routes.ts

build: dist/switchyard dist/switchyard.mjs
dist/switchyard: $(SRC) | install
	$(BIN)/bun build src/main.ts --compile --outfile dist/switchyard
dist/switchyard.mjs: $(SRC) | install
	$(BIN)/bun build src/main.ts --target=node --outfile dist/switchyard.mjs

# Needs internet: deno compile downloads its runtime (denort). Not buildable on offline machines.
deno-compile: install
	$(BIN)/deno compile -A --output dist/switchyard-deno src/main.ts

run: build
	bash tests/demo/run.sh

unit: install gen
	bash tests/run-unit.sh

e2e: install build
	bash tests/run-e2e.sh

test: install
	bash tests/run-all.sh

bench: install build
	bash tests/bench/run.sh

# WebSocket + SSE soak through each runtime's artifact (tests/soak/soak.ts): data checked, RSS and
# fds must come back. SOAK_SECONDS of load per runtime (default 120 here, 10 inside `make test`);
# SOAK_RUNTIMES=bun,node narrows.
SOAK_SECONDS ?= 120
soak: install build
	SOAK_SECONDS=$(SOAK_SECONDS) node --import tsx --test --test-reporter=spec tests/soak/soak.ts

# Differential fuzzer (tests/fuzz/): our HTTP/1.1 engine and Bun transport against llhttp, and
# the config validator. FUZZ_SECONDS (default 300), FUZZ_SEED (default random, printed),
# FUZZ_PARTS=requests,responses,configs. BUG inputs are saved under tests/fuzz/regressions/.
FUZZ_SECONDS ?= 300
fuzz: install
	FUZZ_SECONDS=$(FUZZ_SECONDS) node --import tsx tests/fuzz/run.ts

# The rate limit's memory store under FLOOD_KEYS (default 1,000,000) distinct keys, RSS sampled,
# per runtime (tests/bench/flood.ts). FLOOD_RUNTIMES=bun,node narrows.
flood: install build
	node --import tsx tests/bench/flood.ts

clean:
	rm -rf dist
