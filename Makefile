# YourCI: build, test, lint and benchmark. Every target works offline once
# Go modules are downloaded; .ci/run installs the Debian packages tests use.
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build test unit test-cluster fuzz lint bench demo clean dist

# Fuzz targets run briefly on every `make test`: each function that turns
# outside data into an event, a path, a subject or a log.
FUZZTIME ?= 4s
FUZZ_TARGETS = \
	./pkg/webhook:FuzzPullEventFrom \
	./pkg/webhook:FuzzHandler \
	./pkg/webhook:FuzzParseCommands \
	./pkg/webhook:FuzzCheckEventFrom \
	./pkg/webhook:FuzzGroupEventFrom \
	./pkg/webhook:FuzzDecodePull \
	./pkg/webhook:FuzzMemberValue \
	./pkg/webhook:FuzzValidJSON \
	./pkg/status:FuzzParseExternalID \
	./pkg/events:FuzzValidateName \
	./pkg/pipeline:FuzzDerivedName \
	./pkg/pipeline:FuzzMaskingWriter \
	./pkg/pipeline:FuzzTermWriter \
	./pkg/events:FuzzTokenRoundTrip \
	./pkg/events:FuzzDecodeToken \
	./pkg/events:FuzzAppendCompact \
	./pkg/artifacts:FuzzTestDir

all: lint test

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test: fuzz unit

unit:
	$(GO) test -count=1 -timeout 12m $(PKGS)

# The three-node NATS cluster test (issue 17) alone, with its figures
# (webhooks refused during each election, the longest answer, when the
# work resumed); `make test` runs it too.
test-cluster:
	YCI_REQUIRE_NATS_SERVER=1 $(GO) test -count=1 -v -run TestClusterLeaderKilledMidBuild ./e2e/

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; log=$$(mktemp); \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		if ! $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg >$$log 2>&1; then \
			cat $$log; \
			if grep -q 'Failing input written to' $$log; then rm -f $$log; exit 1; fi; \
			echo "fuzz $$name: the fuzzing engine stopped without a failing input (a loaded machine); not a finding"; \
		fi; \
		rm -f $$log; \
	done

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 20m $(PKGS)

# demo runs the whole system on its embedded defaults: GitHub stand-in,
# receiver, worker and JetStream, no credentials and no network.
demo: build
	$(BIN)/demo -bin $(BIN)

clean:
	rm -rf $(BIN) $(DIST)

# dist makes one tarball per platform, yourci-<version>-<os>-<arch>.tar.gz,
# that installs on a box without Go: static binaries (no cgo, so no libc
# version to match) named yci-<command> so they cannot collide on a PATH,
# the version stamped in (-version prints it), the deploy/ files and the
# docs. Cross-compiling pure Go needs nothing but the toolchain.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64
DIST_COMMANDS = receiver worker reconcile queue
DIST_LDFLAGS  = -s -w -X github.com/yourci/yourci/pkg/version.stamped=$(VERSION)

dist:
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=yourci-$(VERSION)-$$os-$$arch; stage=$(DIST)/$$name; \
		rm -rf $$stage; mkdir -p $$stage/bin $$stage/deploy; \
		for c in $(DIST_COMMANDS); do \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=false \
				-ldflags '$(DIST_LDFLAGS)' -o $$stage/bin/yci-$$c ./cmd/$$c; \
		done; \
		(cd deploy && find . -type f ! -name '*_test.go' | sort | tar -cf - -T -) | tar -C $$stage/deploy -xf -; \
		cp README.md SECURITY.md $$stage/; \
		tar -C $(DIST) --owner=0 --group=0 --numeric-owner -czf $(DIST)/$$name.tar.gz $$name; \
		rm -rf $$stage; \
		echo "$(DIST)/$$name.tar.gz"; \
	done
