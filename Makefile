# Everyday commands. The scripts hold the details; see README.md.

SHELL := /bin/bash

.PHONY: help run test build release deps clean bench

help:
	@echo "make run      install missing Debian packages (root), build release, start redis + authd + nginx on 127.0.0.1:$${HTTP_PORT:-8080}"
	@echo "make test     swift test (unit tests, and integration tests through nginx)"
	@echo "make build    swift build (debug)"
	@echo "make release  swift build -c release --static-swift-stdlib"
	@echo "make deps     install missing Debian packages (as root; otherwise prints the apt-get line)"
	@echo "make bench    build release, run wrk through nginx against authd and two references (bench/run.sh; QUICK=1 for a smoke run)"
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

clean:
	rm -rf .build var/nginx var/redis.conf
