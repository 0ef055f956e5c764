# pyrodist: a Kubernetes operator and a zone-aware distributor for Pyroscope v2.
#
# Tools (controller-gen, helm, kwok, Kubernetes binaries) are built from Go
# modules pinned in hack/tools/* into a versioned cache outside the repo
# (${XDG_CACHE_HOME:-~/.cache}/pyrodist); a first run builds them, later runs reuse them.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO ?= go
BIN ?= $(CURDIR)/bin
TOOLS := $(CURDIR)/hack/build-tools.sh
# The image tag is the chart's appVersion, so `make image`, the chart's default
# image and the operator's --distributor-image (set by the chart) agree.
VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/pyrodist/Chart.yaml)
IMG ?= ghcr.io/pyrodist/pyrodist:$(VERSION)

# Paths of the cached tools; each target below builds what it needs first.
CONTROLLER_GEN = $(shell $(TOOLS) path controller-gen)
HELM = $(shell $(TOOLS) path helm)
ENVTEST_DIR = $(shell $(TOOLS) path k8s-dir)
# A user's own envtest binaries win over ours.
KUBEBUILDER_ASSETS ?= $(ENVTEST_DIR)
export KUBEBUILDER_ASSETS

# Inside `make test` each fuzz target runs a fixed number of inputs (the count
# after its name below, about 5 s each on 2 cores), not a duration: with a
# duration, go1.26's fuzz coordinator can report its own deadline as a failure
# ("context deadline exceeded", no input written; fixed in go1.27), which
# failed a clean CI run. `make fuzz FUZZTIME=10m` runs a
# campaign of that length per target instead (a rare spurious failure of that
# kind is then possible).
FUZZTIME ?=
# Packages and targets fuzzed by `make test` / `make fuzz`, as package:Target:count
# (count: inputs to run when FUZZTIME is unset).
# Minimizing a new input runs the target once per byte tried: on our 50 KB
# profile seeds Go's default (60s) spent whole short runs minimizing the first
# interesting input, fuzzing nothing. A bounded count keeps runs fuzzing.
FUZZMINIMIZE ?= 200x
FUZZ_TARGETS ?= ./internal/profile:FuzzPipeline:25000 ./internal/profile:FuzzDecode:20000 ./internal/ingest/legacy:FuzzParseName:30000 ./internal/ingest/legacy:FuzzFolded:30000 ./internal/ingest/legacy:FuzzPprof:30000 ./internal/ingest/legacy:FuzzTrie:60000 ./internal/ingest/legacy:FuzzTree:60000 ./internal/ingest/legacy:FuzzSpeedscope:60000 ./internal/ingest:FuzzIngest:10000 ./internal/ingest:FuzzOTLP:4000 ./internal/ingest/jfr:FuzzJFR:25000 ./internal/distributor:FuzzPush:2000

# Generated paths that must be committed; `make test` fails when they are stale.
GENERATED := api config/crd config/rbac charts/pyrodist/templates/crds charts/pyrodist/templates/_manager-rules.tpl

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: controller-gen
controller-gen:
	@$(TOOLS) controller-gen

.PHONY: manifests
manifests: controller-gen ## Generate CRDs (config/crd/bases and the chart) and RBAC from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=false webhook \
		paths="./api/..." paths="./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	hack/chart-crds.sh

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: lint
lint: vet ## gofmt check and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: check-generated
check-generated: manifests generate ## Fail when generated files differ from what is committed.
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "generated files are stale; run 'make manifests generate' and commit:"; \
		git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); exit 1; fi

.PHONY: k8s-bins
k8s-bins: ## Build kube-apiserver and etcd for envtest (cached; ~10 min the first time on 2 cores).
	@if [ "$(KUBEBUILDER_ASSETS)" = "$(ENVTEST_DIR)" ]; then $(TOOLS) envtest; \
	else echo "using KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS)"; fi

.PHONY: test
test: k8s-bins check-generated lint ## Unit, envtest and integration tests, short fuzzing, e2e.
	$(GO) test -count=1 ./...
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory test-e2e

.PHONY: fuzz
fuzz: ## Run every fuzz target for its input count, or for FUZZTIME when set (e.g. FUZZTIME=10m).
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
		ft="$(FUZZTIME)"; if [ -z "$$ft" ]; then ft="$${n}x"; fi; \
		echo "fuzz $$pkg $$fn for $$ft"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime="$$ft" -fuzzminimizetime=$(FUZZMINIMIZE) $$pkg; done

.PHONY: campaign
campaign: ## The fault and hostile-input campaigns at full length (make test runs short versions); figures in docs/reliability.md.
	PYRODIST_CAMPAIGN=long $(GO) test -count=1 -v -timeout 60m -run 'TestFaultCampaign|TestHostileInputs' ./test/integration/

.PHONY: test-e2e
test-e2e: ## End-to-end test on a local control plane (built from Go modules), chart and image tests.
	$(TOOLS) k8s etcd kwok metrics-server helm
	cd hack/image && $(GO) test -count=1 ./...
	$(GO) test -count=1 -tags e2e -timeout 30m ./test/e2e/...

##@ Build

.PHONY: build
build: ## Build bin/operator and bin/distributor, and the harness programs (fakewriter, loadgen) the demo and bench run.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.defaultImage=$(IMG)" -o $(BIN)/ ./cmd/... ./test/cmd/...

.PHONY: image
image: build ## Build the container image as a tarball (bin/image.tar; `docker load` or `crane push` it). No Docker needed.
	cd hack/image && $(GO) run . -bin $(BIN) -tag $(IMG) -o $(BIN)/image.tar \
		-revision "$$(git -C $(CURDIR) rev-parse --short HEAD 2>/dev/null)" \
		-source-date-epoch "$$(git -C $(CURDIR) log -1 --format=%ct 2>/dev/null || echo 0)"

.PHONY: run-distributor
run-distributor: build ## Run a distributor with its defaults.
	$(BIN)/distributor

.PHONY: bench
bench: ## Benchmarks, the floor and a load run; writes the performance report (path printed at the end).
	GO=$(GO) hack/bench.sh

##@ Demo

.PHONY: demo
demo: build ## Run the whole system locally (no cluster, no Docker needed).
	hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop what `make demo` started.
	hack/demo.sh down
