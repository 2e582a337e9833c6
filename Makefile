# certhook — common tasks. `make run` serves on the embedded SQLite default; `make test`
# runs every test (PostgreSQL tests use CERTHOOK_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/postgres, and skip with a message when it is down
# unless CI=true).
CARGO ?= cargo

.PHONY: run build install test lint deny fmt bench bench-smoke quickstart clean

run:
	$(CARGO) run -p certhook -- serve

build:
	$(CARGO) build --workspace --all-targets

# certhook on PATH (~/.cargo/bin), as the README's quickstart uses it.
install:
	$(CARGO) install --path crates/certhook --locked

# The README's quickstart block, run as written (CI runs it too).
quickstart:
	bash tests/quickstart.sh

# PostgreSQL tests list themselves in RAN_LOG when they get a database and in SKIP_LOG when
# they skip (no server, outside CI). Both counts are printed whether the tests passed or not.
SKIP_LOG := $(or $(CARGO_TARGET_DIR),target)/tmp/postgres-skipped.txt
RAN_LOG := $(or $(CARGO_TARGET_DIR),target)/tmp/postgres-ran.txt

test:
	@rm -f $(SKIP_LOG) $(RAN_LOG)
	@status=0; $(CARGO) test --workspace || status=$$?; \
	ran=$$(cat $(RAN_LOG) 2>/dev/null | wc -l); \
	echo "PostgreSQL: $$ran tests ran against $${CERTHOOK_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres} (listed in $(RAN_LOG))."; \
	if [ -s $(SKIP_LOG) ]; then \
	  echo "WARNING: $$(wc -l < $(SKIP_LOG)) PostgreSQL tests SKIPPED (no server; see $(SKIP_LOG)). Set CERTHOOK_TEST_POSTGRES_URL or start PostgreSQL."; \
	fi; \
	exit $$status

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Licences, banned and duplicated crates, sources (deny.toml). Advisories need the RustSec
# database from GitHub: `cargo deny check advisories` where the network reaches it.
deny:
	$(CARGO) deny check licenses bans sources

fmt:
	$(CARGO) fmt --all

# Release build; prints the table and writes it to target/bench.md (BENCHMARKS.md quotes it).
bench:
	$(CARGO) build --release -p certhook -p certhook-bench
	./target/release/certhook-bench --output target/bench.md

# Seconds-long smoke run of the same harness (CI), no thresholds.
bench-smoke:
	$(CARGO) build -p certhook -p certhook-bench
	./target/debug/certhook-bench --quick

clean:
	$(CARGO) clean
