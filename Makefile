# Everyday commands. The scripts hold the details; see README.md.

SHELL := /bin/bash

.PHONY: help run test build release deps clean bench soak tsan asan fuzz chaos contract sentinel

help:
	@echo "make run      install missing Debian packages (root), build release, start redis + authd + nginx on 127.0.0.1:$${HTTP_PORT:-8080}"
	@echo "make test     swift test (unit tests, and integration tests through nginx)"
	@echo "make build    swift build (debug)"
	@echo "make release  swift build -c release --static-swift-stdlib"
	@echo "make deps     install missing Debian packages (as root; otherwise prints the apt-get line)"
	@echo "make bench    build release, run wrk through nginx against authd and two references (bench/run.sh; QUICK=1 for a smoke run)"
	@echo "make soak     build release, 10 minutes of mixed load through nginx; fails if authd's RSS or fds or Redis's memory grow, or on any non-2xx (not in CI)"
	@echo "make chaos    fault suite: Redis/authd SIGKILL, SIGTERM, AOF durability, slow clients (about 70 s; not in CI)"
	@echo "make contract schemathesis against docs/openapi.yaml through nginx, on a stack of its own on loopback (release build; AUTHD_BIN=path to skip it)"
	@echo "make sentinel the Redis Sentinel failover test alone (primary, replica, sentinel on loopback)"
	@echo "make tsan     swift test under ThreadSanitizer (tests and the authd they start; scratch .build-tsan)"
	@echo "make asan     swift test under AddressSanitizer (scratch .build-asan)"
	@echo "make fuzz     libFuzzer targets (Fuzz/: JWT, JSON bodies, FastCGI params, FastCGI framing), FUZZ_SECONDS (60) each"
	@echo "make clean    remove build products (.build) and generated nginx files; keeps .env and var/redis"

run:
	bash scripts/run-local.sh

test:
	swift test

build:
	swift build

release:
	swift build -c release --static-swift-stdlib

deps:
	bash scripts/deps.sh

bench:
	bash bench/run.sh

soak:
	SOAK=1 bash bench/run.sh

# The sanitized authd that the integration tests start writes its reports to files
# (its stderr is deleted with the test stack); any report fails the target.
tsan asan: SAN = $(if $(filter tsan,$@),thread,address)
tsan asan: DIR = .build-$@
tsan asan:
	rm -rf $(DIR)/reports && mkdir -p $(DIR)/reports
	@TSAN_OPTIONS="log_path=$(CURDIR)/$(DIR)/reports/tsan" ASAN_OPTIONS="log_path=$(CURDIR)/$(DIR)/reports/asan detect_leaks=0" \
		swift test --sanitize=$(SAN) --scratch-path $(DIR); rc=$$?; \
	if ls $(DIR)/reports/* >/dev/null 2>&1; then \
		cat $(DIR)/reports/*; echo "make $@: sanitizer reports above ($(DIR)/reports)" >&2; exit 1; \
	fi; \
	if [[ $$rc != 0 ]]; then echo "make $@: swift test failed ($$rc)" >&2; exit $$rc; fi; \
	echo "make $@: tests passed, no sanitizer reports"

chaos:
	AUTHD_CHAOS=1 swift test --filter Chaos

contract:
	bash scripts/contract.sh

sentinel:
	swift test --filter SentinelTests

fuzz:
	bash scripts/fuzz.sh $${FUZZ_SECONDS:-60}

clean:
	rm -rf .build .build-tsan .build-asan Fuzz/.build Fuzz/work var/nginx var/redis.conf
