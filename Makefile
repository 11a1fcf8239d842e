# countd: `make run` starts a local 3-node cluster, `make test` runs every
# check. Everything either needs is installed here (Go tools into ./bin).

GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2

.PHONY: all build run test lint unit bench clean deps jepsen

# The ZooKeeper end-to-end test runs the Debian package's servers.
ZK_SERVER := /usr/share/zookeeper/bin/zkServer.sh
# The metrics tests pipe a scrape into promtool (Debian package prometheus)
# when it is installed.
PROMTOOL := /usr/bin/promtool
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

all: build

build:
	$(GO) build -o $(BIN)/countd ./cmd/countd
	$(GO) build -o $(BIN)/countctl ./cmd/countctl

## run: build and start a 3-node cluster on loopback (data in ./data, Ctrl-C stops it)
run: build
	./scripts/run-cluster.sh

## test: formatting, vet, staticcheck, then every test with the race detector
test: lint unit

# COUNTD_REQUIRE_ZK turns "ZooKeeper is not installed" from a skip into a
# failure, so `make test` can never pass without the ZooKeeper test;
# COUNTD_REQUIRE_JEPSEN does the same for the jepsen-lite campaigns, which
# need root for network namespaces (CI runs as root). COUNTD_REQUIRE_PROMTOOL
# does it for promtool, but only where deps managed to install it: promtool
# is a check we run if available.
unit: deps
	env COUNTD_REQUIRE_ZK=1 COUNTD_REQUIRE_JEPSEN=1 $$([ -x $(PROMTOOL) ] && echo COUNTD_REQUIRE_PROMTOOL=1) \
	  $(GO) test -race -count=1 -timeout 15m ./...

## deps: Debian packages the tests need (ZooKeeper and its Java runtime; promtool if available)
deps: $(ZK_SERVER) $(PROMTOOL)

$(ZK_SERVER):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zookeeper || \
	  { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zookeeper; }

# Installing prometheus starts no daemon here: without systemd, the package's
# init script goes through invoke-rc.d, which policy-rc.d (exit 101 in
# containers) tells not to start services. A missing package is not an
# error, so the recipe never fails; the promtool checks are then skipped.
$(PROMTOOL):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus || \
	  { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; } || \
	  echo "make: the Debian package prometheus (promtool) is not available; its checks will be skipped"

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## bench: start a real 3-node cluster (fsync on) and measure minting over HTTP
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 5s -timeout 30m ./bench/

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
	rm -rf $(BIN) data jepsen-out
