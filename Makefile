# The two commands a newcomer needs: `make dev` runs the system on this machine,
# `make test` runs every test. Everything else here is a step of those two.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK_ENV := e2e/.stack/env
# Loads the addresses that e2e/stack/up wrote (KUBECONFIG, LW_*, PATH with the stack's kubectl).
WITH_STACK := set -a; . $(STACK_ENV); set +a;
CARGO_FLAGS ?= --locked

.PHONY: build-worker-release pgo-profile help dev test fmt fmt-check lint unit e2e crds gitops-health images images-debug bench-operator bench-operator-scale bench-worker bench-worker-store bench-sandbox bench-api fuzz stack-up stack-down stack-prune stack-status clean

help: ## List the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

DEV_NAMESPACE ?= licenseware-demo
DEV_LISTEN ?= 127.0.0.1:8080
DEV_FLAGS ?=
dev: stack-up ## The whole system here: stack, CRDs, sample app; operator, API and a worker per Uploader as local processes; a demo upload, then curl lines (Ctrl-C stops it all).
	$(WITH_STACK) kubectl apply --server-side -f crds/ && \
		kubectl create namespace $(DEV_NAMESPACE) --dry-run=client -o yaml | kubectl apply -f - && \
		kubectl apply --server-side -n $(DEV_NAMESPACE) -k manifests/examples
	cargo build $(CARGO_FLAGS) -p licenseware-operator -p licenseware-worker -p licenseware-e2e \
		--bin licenseware-operator --bin licenseware-worker --bin dev
	$(WITH_STACK) exec $(or $(CARGO_TARGET_DIR),target)/debug/dev --namespace $(DEV_NAMESPACE) --listen $(DEV_LISTEN) $(DEV_FLAGS)

test: fmt-check lint unit e2e ## Every test: format, clippy, unit tests, then the e2e suite on the real stack.

fmt: ## Format the code.
	cargo fmt --all

fmt-check: ## Fail when the code is not formatted.
	cargo fmt --all -- --check

lint: ## Clippy on every target, warnings denied.
	cargo clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

unit: ## Unit tests (no servers needed).
	cargo test $(CARGO_FLAGS) --workspace --exclude licenseware-e2e

e2e: stack-up ## The end-to-end suite against the real stack, then the tests that restart its servers, alone.
	e2e/stack/prune
	$(WITH_STACK) cargo test $(CARGO_FLAGS) -p licenseware-e2e
	$(WITH_STACK) cargo test $(CARGO_FLAGS) -p licenseware-e2e --test e2e -- --ignored --test-threads=1 worker_consume::

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
IMAGES_DIR ?= target/images
images: ## Build the operator and worker images (OCI archives in target/images, no container engine: umoci) from release binaries, then run each binary from its image.
	command -v umoci >/dev/null || { echo "umoci is missing: apt-get install umoci (.ci/run installs it)" >&2; exit 1; }
	nice cargo build $(CARGO_FLAGS) --release -p licenseware-operator --bin licenseware-operator
	nice $(MAKE) --no-print-directory build-worker-release
	mkdir -p $(IMAGES_DIR)/bin && cp $(RELEASE_DIR)/licenseware-operator $(WORKER_RELEASE_BIN) $(IMAGES_DIR)/bin/
	e2e/images/build $(IMAGES_DIR) $(VERSION) $(IMAGES_DIR)/bin
	e2e/images/check $(IMAGES_DIR) $(VERSION)

images-debug: ## The images' packaging checked fast: the same build and check from the debug binaries `make test` built (CI runs it; `make images` is the release).
	command -v umoci >/dev/null || { echo "umoci is missing: apt-get install umoci (.ci/run installs it)" >&2; exit 1; }
	cargo build $(CARGO_FLAGS) -p licenseware-operator -p licenseware-worker \
		--bin licenseware-operator --bin licenseware-worker
	e2e/images/build $(IMAGES_DIR)-debug $(VERSION) $(or $(CARGO_TARGET_DIR),target)/debug
	e2e/images/check $(IMAGES_DIR)-debug $(VERSION)

ARGOCD_HEALTH := manifests/gitops/argocd/argocd-cm-health.yaml
gitops-health: ## Regenerate the Argo CD health checks (argocd-cm-health.yaml) from manifests/gitops/argocd/health.lua.
	{ sed -n '1,/^data:$$/p' $(ARGOCD_HEALTH); \
	  for kind in App DataTable Report ReportComponent Topic Uploader; do \
	    printf '  resource.customizations.health.licenseware.io_%s: |\n' $$kind; \
	    sed 's/^\(.\)/    \1/' manifests/gitops/argocd/health.lua; \
	  done; } > $(ARGOCD_HEALTH).new && mv $(ARGOCD_HEALTH).new $(ARGOCD_HEALTH)

crds: ## Regenerate the committed CRD YAML (crds/*.yaml) from the Rust types.
	cargo run $(CARGO_FLAGS) -q -p licenseware-operator -- crdgen --out-dir crds

BENCH_TOPICS ?= 1000
BENCH_UPLOADERS ?= 1000
bench-operator: stack-up ## Benchmark: BENCH_TOPICS Topics + BENCH_UPLOADERS Uploaders until Ready, peak RSS, no-op resync calls.
	cargo build $(CARGO_FLAGS) --release -p licenseware-operator -p licenseware-e2e --bin licenseware-operator --bin bench_operator
	e2e/stack/prune
	$(WITH_STACK) target/release/bench_operator --operator-bin target/release/licenseware-operator \
		--topics $(BENCH_TOPICS) --uploaders $(BENCH_UPLOADERS)

SCALE_UPLOADERS ?= 5000
bench-operator-scale: stack-up ## Scale run: SCALE_UPLOADERS Uploaders (no floor, no resync wait): memory per Uploader and the scaler's tick time.
	cargo build $(CARGO_FLAGS) --release -p licenseware-operator -p licenseware-e2e --bin licenseware-operator --bin bench_operator
	e2e/stack/prune
	$(WITH_STACK) target/release/bench_operator --operator-bin target/release/licenseware-operator \
		--topics 0 --uploaders $(SCALE_UPLOADERS) --no-floor --no-resync --timeout-secs 1200

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := validate_csv validate_workbook process_csv xlsx_parts ods_content unpack_tar unpack_zip upload_form
fuzz: ## Fuzz the worker's readers, validators and processing for FUZZ_SECONDS each (nightly + cargo-fuzz, installed if missing).
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	cd worker && for target in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$target && find tests/fixtures -maxdepth 1 -type f -exec cp -n {} fuzz/corpus/$$target/ \; ; \
		if [ $$target = validate_workbook ]; then \
			printf '\000' | cat - tests/fixtures/RVTools.xlsx > fuzz/corpus/$$target/selector-xlsx-RVTools; \
		fi; \
		cargo +nightly fuzz run $$target fuzz/corpus/$$target -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

BENCH_STORE_EVENTS ?= 20
BENCH_STORE_ROWS ?= 5000
bench-worker-store: stack-up ## Benchmark (c): BENCH_STORE_EVENTS events of BENCH_STORE_ROWS CSV rows into MongoDB by the worker vs a bare insert_many.
	$(MAKE) --no-print-directory build-worker-release
	cargo build $(CARGO_FLAGS) --release -p licenseware-e2e --bin bench_worker_store
	$(WITH_STACK) target/release/bench_worker_store --worker-bin $(WORKER_RELEASE_BIN) \
		--events $(BENCH_STORE_EVENTS) --rows $(BENCH_STORE_ROWS) --repeat $(or $(BENCH_REPEAT),3)

include worker/bench/bench.mk
bench-worker: build-worker-release
# The worker's release build is profile-guided (worker/pgo/README.md): built with the
# flags worker/pgo/rustflags prints, for the host triple named as the profile was trained.
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RELEASE_DIR := $(or $(CARGO_TARGET_DIR),target)/release
WORKER_RELEASE_BIN := $(or $(CARGO_TARGET_DIR),target)/$(HOST_TRIPLE)/release/licenseware-worker
build-worker-release: ## The worker's release build, profile-guided: target/HOST/release/licenseware-worker.
	RUSTFLAGS="$$(worker/pgo/rustflags)" cargo build $(CARGO_FLAGS) --release --target $(HOST_TRIPLE) \
		-p licenseware-worker --bin licenseware-worker
	worker/pgo/check $(WORKER_RELEASE_BIN)

pgo-profile: stack-up ## Train the worker's profile (worker/pgo/licenseware-worker.profdata.xz) on the stack: an instrumented build, the benchmarks' workloads, llvm-profdata.
	$(WITH_STACK) worker/pgo/train

stack-up: ## Start (installing on first use) kube-apiserver+etcd, Kafka, FerretDB and Redis on loopback.
	e2e/stack/up

stack-down: ## Stop the stack's processes (data kept).
	e2e/stack/down

stack-prune: ## Delete the Kafka topics earlier test and benchmark runs left on the stack.
	e2e/stack/prune

stack-status: ## Show each server of the stack.
	e2e/stack/status

clean: stack-down ## Stop the stack and remove build output.
	cargo clean

# Extra flags of bench_api (e.g. --upload-mb 10,100 --rounds 5 --seconds 10; --help lists them).
BENCH_API_ARGS ?=
bench-api: stack-up ## Benchmark (issue 11 §7, 12 §6): /validation vs the SDK's route, bare check vs hello world, uploads vs cp, component cache hit vs redis-benchmark GET, miss vs the driver, 1M-cell xlsx vs pandas+XlsxWriter.
	command -v wrk >/dev/null || { echo "bench-api needs wrk: apt-get install wrk" >&2; exit 1; }
	command -v redis-benchmark >/dev/null || { echo "bench-api needs redis-benchmark: apt-get install redis-tools" >&2; exit 1; }
	$(MAKE) --no-print-directory build-worker-release
	cargo build $(CARGO_FLAGS) --release -p licenseware-e2e --bin bench_api
	read -r sdk_python sdk_src < <(e2e/bench/sdk-env) && $(WITH_STACK) \
		target/release/bench_api --worker-bin $(WORKER_RELEASE_BIN) \
		--sdk-python "$$sdk_python" --sdk-src "$$sdk_src" $(BENCH_API_ARGS)

BENCH_SANDBOX_FILES ?= 1000
bench-sandbox: ## Benchmark: the sandbox's cost per file (BENCH_SANDBOX_FILES small CSVs validated and processed, in process vs contained).
	$(MAKE) --no-print-directory build-worker-release
	cargo build $(CARGO_FLAGS) --release -p licenseware-e2e --bin bench_sandbox
	target/release/bench_sandbox --worker-bin $(WORKER_RELEASE_BIN) --files $(BENCH_SANDBOX_FILES)
