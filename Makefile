# syncd — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
SANDBOX_ADDR ?= 127.0.0.1:18080

.PHONY: build run test vet unit bench services services-stop clickhouse-start clickhouse-stop dev-env clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/syncd ./cmd/syncd
	$(GO) build -o $(BIN)/syncd-sandbox ./cmd/syncd-sandbox

clickhouse-start:
	scripts/clickhouse.sh start

clickhouse-stop:
	scripts/clickhouse.sh stop

# Every service the tests and the sandbox use, on loopback, data under .run/:
# ClickHouse 19000, PostgreSQL 15432, MariaDB 13306 (each installed with
# apt-get when missing).
services: clickhouse-start
	scripts/postgres.sh start
	scripts/mariadb.sh start

services-stop:
	scripts/mariadb.sh stop || true
	scripts/postgres.sh stop || true
	scripts/clickhouse.sh stop || true

# .run/dev.env holds random development keys (git-ignored), made once.
dev-env:
	scripts/dev-env.sh

# Starts ClickHouse, PostgreSQL, MariaDB, the sandbox (four simulated source systems, three
# simulated platforms) and `syncd run`; records flow within seconds. Ctrl-C stops syncd and
# the sandbox.
run: build services dev-env
	scripts/run-local.sh

# Sets up what the tests need (ClickHouse, PostgreSQL, MariaDB) and runs go vet and every test.
test: services
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

bench: services
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
