# YourCI: build, test, lint and benchmark. Every target works offline once
# Go modules are downloaded; .ci/run installs the Debian packages tests use.
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build test unit fuzz lint bench demo clean

# Fuzz targets run briefly on every `make test`: each function that turns
# outside data into an event, a path, a subject or a log.
FUZZTIME ?= 4s
FUZZ_TARGETS = \
	./pkg/webhook:FuzzPullEventFrom \
	./pkg/webhook:FuzzHandler \
	./pkg/webhook:FuzzParseCommands \
	./pkg/pipeline:FuzzValidateName \
	./pkg/pipeline:FuzzMaskingWriter \
	./pkg/events:FuzzTokenRoundTrip \
	./pkg/events:FuzzDecodeToken \
	./pkg/artifacts:FuzzTestDir

all: lint test

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test: fuzz unit

unit:
	$(GO) test -count=1 -timeout 12m $(PKGS)

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
	rm -rf $(BIN)
