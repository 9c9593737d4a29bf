# YourCI: build, test, lint and benchmark. Every target works offline once
# Go modules are downloaded; .ci/run installs the Debian packages tests use.
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build test lint bench demo clean

all: lint test

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test:
	$(GO) test -count=1 -timeout 12m $(PKGS)

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
