# rootswap: one static binary. `make build test` is all a developer needs.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/rootswap/rootswap/applets.Version=$(VERSION)
# build/noinline says which packages are built without inlining, and why.
GCFLAGS := $(foreach p,$(shell grep -v '^\#' build/noinline),-gcflags='$(p)=-l')
PREFIX  ?= /usr/local

.PHONY: build test test-short bench lint size-budget demo e2e e2e-ci e2e-all install fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath $(GCFLAGS) -ldflags '$(LDFLAGS)' -o rootswap .
	@build/check-static.sh rootswap

# The test command README names: every tier that this machine can run.
# As root the root tier (namespaces, loop devices) runs too.
test: build lint size-budget
	ROOTSWAP_BIN=$(CURDIR)/rootswap $(GO) test -count=1 -timeout 40m ./...

# Tier 1 only: no root needed.
test-short:
	$(GO) test -short ./...

bench: build
	build/bench.sh

# The binary's budget (issue 10): 8 MiB. build/size.sh says where the bytes are.
size-budget: build
	@size=$$(stat -c %s rootswap); if [ $$size -gt 8388608 ]; then \
	  echo "rootswap is $$size bytes, over its 8 MiB budget (8388608): build/size.sh says where the bytes are"; exit 1; fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Short fuzz runs of every parser (FUZZTIME=10s each by default).
fuzz:
	build/fuzz.sh

# The demo applet is built into rootswap-demo only (-tags demo): the
# sandbox builder stays out of the binary that swaps servers.
demo:
	CGO_ENABLED=0 $(GO) build -tags demo -trimpath $(GCFLAGS) -ldflags '$(LDFLAGS)' -o rootswap-demo .
	./rootswap-demo demo

# Tier 3: the qemu Debian guest of profile PROFILE (build/vm.sh profiles;
# CI runs the default). The swap with finish and a reboot, then a fault
# run: the SSH session that started run dies during the copy. Logs in
# /tmp/rootswap-e2e-PROFILE and /tmp/rootswap-e2e-PROFILE-fault.
PROFILE ?= systemd
e2e: build
	ROOTSWAP_E2E_PROFILE=$(PROFILE) build/e2e.sh
	ROOTSWAP_E2E_PROFILE=$(PROFILE) ROOTSWAP_E2E_FAULT=kill-session ROOTSWAP_E2E_FINISH=0 build/e2e.sh

# What CI runs: the systemd profile as make e2e does, then the swap and
# its checks on the xfs and btrfs roots (their images build in ~4 min).
e2e-ci: e2e
	ROOTSWAP_E2E_PROFILE=xfs ROOTSWAP_E2E_FINISH=0 build/e2e.sh
	ROOTSWAP_E2E_PROFILE=btrfs ROOTSWAP_E2E_FINISH=0 build/e2e.sh

# Every profile's swap with finish and reboot, one after the other (each
# image is built once and cached); a line per profile at the end.
e2e-all: build
	ROOTSWAP_E2E_PROFILE=all build/e2e.sh

install: build
	install -m 0755 rootswap $(DESTDIR)$(PREFIX)/sbin/rootswap

clean:
	rm -f rootswap
