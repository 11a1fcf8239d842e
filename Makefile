# countd: `make run` starts a local 3-node cluster, `make test` runs every
# check. Everything either needs is installed here (Go tools into ./bin).

GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2

.PHONY: all build run run-secure test lint unit bench bench-peers clean deps jepsen soak

# Debian packages the tests run for real: ZooKeeper's servers (the
# ZooKeeper end-to-end test), promtool from prometheus (a real node's
# /metrics through `promtool check metrics`), ip from iproute2
# (jepsen-lite's network namespaces), redis-cli from redis-tools (the
# Redis-protocol end-to-end test) and chromium (the web console's browser
# test, driven with chromedp). Each is required: a missing one fails
# `make deps`, and `make unit` tells its test not to skip.
ZK_SERVER := /usr/share/zookeeper/bin/zkServer.sh
PROMTOOL  := /usr/bin/promtool
IP        := /usr/sbin/ip
REDIS_CLI := /usr/bin/redis-cli
CHROMIUM  := /usr/bin/chromium
# etcd (the Debian package etcd-server) only for `make bench-peers`, so it
# is not in deps.
ETCD      := /usr/bin/etcd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

all: build

build:
	$(GO) build -o $(BIN)/countd ./cmd/countd
	$(GO) build -o $(BIN)/countctl ./cmd/countctl

## run: build and start a 3-node cluster on loopback (data in ./data, Ctrl-C stops it)
run: build
	./scripts/run-cluster.sh

## run-secure: the same 3 nodes with TLS, a gossip key and ACLs (data and keys in ./data-secure)
run-secure: build
	SECURE=1 ./scripts/run-cluster.sh

## test: formatting, vet, staticcheck, then every test with the race detector
test: lint unit

# The COUNTD_REQUIRE_* variables turn "not installed" (ZooKeeper, promtool)
# and "not root" (jepsen-lite's network namespaces; CI runs as root) from a
# skip into a failure, so `make test` can never pass without those tests.
unit: deps
	env COUNTD_REQUIRE_ZK=1 COUNTD_REQUIRE_JEPSEN=1 COUNTD_REQUIRE_PROMTOOL=1 COUNTD_REQUIRE_REDIS=1 COUNTD_REQUIRE_BROWSER=1 \
	  $(GO) test -race -count=1 -timeout 15m ./...

## deps: the Debian packages the tests need (zookeeper, prometheus for promtool, iproute2, redis-tools, chromium)
deps: $(ZK_SERVER) $(PROMTOOL) $(IP) $(REDIS_CLI) $(CHROMIUM)

# Installing prometheus starts no daemon here: without systemd, the package's
# init script goes through invoke-rc.d, which policy-rc.d (exit 101 in
# containers) tells not to start services.
$(ZK_SERVER):
	$(call apt_install,zookeeper)
$(PROMTOOL):
	$(call apt_install,prometheus)
$(IP):
	$(call apt_install,iproute2)
$(REDIS_CLI):
	$(call apt_install,redis-tools)
$(CHROMIUM):
	$(call apt_install,chromium)
# Where systemd runs, installing etcd-server also starts the packaged etcd
# on 2379/2380; bench-peers' own members use free ports and never meet it.
$(ETCD):
	$(call apt_install,etcd-server)

# apt_install installs a Debian package, refreshing the package lists once
# if the first attempt fails (a fresh machine has none).
define apt_install
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1) || \
	  { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1); }
endef

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## bench: start a real 3-node cluster (fsync on) and measure minting over HTTP
## and the Redis protocol (go-redis, and redis-benchmark from redis-tools)
bench: build $(REDIS_CLI)
	COUNTD_REQUIRE_REDIS=1 $(GO) test -run '^$$' -bench . -benchtime 5s -timeout 30m ./bench/

## bench-peers: BenchmarkMint and, in the same run, the same load against a
## 3-server ZooKeeper ensemble and a 3-member etcd cluster on loopback, for
## countd's throughput as ratios to theirs (installs etcd-server if missing)
bench-peers: build $(ZK_SERVER) $(ETCD)
	COUNTD_BENCH_PEERS=1 $(GO) test -run '^$$' -bench 'BenchmarkMint' -benchtime 5s -timeout 30m ./bench/

## soak: 10 minutes of mixed traffic (large documents, slow bodies, blocking
## queries, watches, connection floods) against 3 real nodes; fails if a
## node's resident memory passes the ceiling or anything acknowledged is
## lost. Tune with SOAK_DURATION and SOAK_RSS_CEILING_MIB.
SOAK_DURATION ?= 10m
SOAK_RSS_CEILING_MIB ?= 768
soak:
	@env COUNTD_SOAK_DURATION=$(SOAK_DURATION) COUNTD_SOAK_RSS_CEILING_MIB=$(SOAK_RSS_CEILING_MIB) \
	  $(GO) test -run '^TestSoak$$' -count=1 -v -timeout 30m ./test/soak/ >soak.log 2>&1; rc=$$?; \
	  grep -E '^(--- |PASS|FAIL|ok)|soak_test.go' soak.log; echo "full output in soak.log"; exit $$rc

## jepsen: a longer jepsen-lite campaign (real cluster, real faults; needs root).
## Exits non-zero on any violation. Tune with JEPSEN_DURATION, JEPSEN_SEED,
## JEPSEN_NODES (3 or 5), JEPSEN_FAULTS (kill,pause,partition,leave) and
## JEPSEN_FLAGS (e.g. -stale-reads); results go under ./jepsen-out.
JEPSEN_DURATION ?= 5m
JEPSEN_NODES    ?= 3
JEPSEN_FAULTS   ?= kill,pause,partition,leave
JEPSEN_SEED     ?=
jepsen: build
	$(GO) build -o $(BIN)/jepsen-lite ./test/jepsen-lite/cmd/jepsen-lite
	$(SUDO) $(BIN)/jepsen-lite -countd $(BIN)/countd -duration $(JEPSEN_DURATION) -nodes $(JEPSEN_NODES) \
	  -faults $(JEPSEN_FAULTS) $(if $(JEPSEN_SEED),-seed $(JEPSEN_SEED)) $(JEPSEN_FLAGS)

clean:
	rm -rf $(BIN) data data-secure jepsen-out
