# Included from the top-level Makefile: `make bench-worker`, the worker benchmark
# (worker/bench/README.md). The lead's rule adds the release build of the worker; part
# (c), bench-worker-store, needs the stack and is defined there.
# BENCH_REPEAT, BENCH_CSV_MB, BENCH_XLSX_ROWS and BENCH_CACHE are read by run.py.

BENCH_WORKER_BIN ?= $(WORKER_RELEASE_BIN)
BENCH_WORKER_ARGS ?=

.PHONY: bench-worker
bench-worker: ## Benchmark: worker validate/process vs the SDK's openpyxl/pandas, time and peak RSS (BENCH_CSV_MB=100,1000); then bench-worker-store.
	python3 worker/bench/run.py --worker-bin $(BENCH_WORKER_BIN) $(BENCH_WORKER_ARGS)
	$(MAKE) --no-print-directory bench-worker-store

.PHONY: bench-worker-selftest
bench-worker-selftest: ## Tests of the worker benchmark harness itself (against a fake worker).
	python=$$(python3 worker/bench/run.py --print-python) && cd worker/bench && \
		$$python -m unittest discover -s . -p 'test_*.py'
