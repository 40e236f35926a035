# Every target creates the virtualenv it needs: a fresh machine needs only Python 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SEEDS  ?= 100000
JOBS   ?= 0

.PHONY: venv demo test lint format typecheck bench bench-codec bench-consensus bench-ocapn bench-receipts bench-segments bench-raft-transport bench-engine bench-raft-storage bench-ledger bench-write-latency bench-messages bench-tokens sim test-soak coverage-consensus clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(VENV)/bin/charter demo

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: venv
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

typecheck: venv
	$(VENV)/bin/mypy --strict -p charter.codec -p charter.crypto -p charter.identity -p charter.consensus -p charter.ocapn -p charter.ledger -p charter.node -p charter.api -p charter.ops -p charter.cli -p charter.governance -p charter.tokens -p charter.store -p charter.multiparty -p charter.ui

bench: bench-codec bench-consensus bench-ocapn bench-receipts bench-segments bench-raft-transport bench-engine bench-raft-storage bench-ledger bench-messages bench-tokens

bench-codec: venv
	$(PY) bench/bench_codec.py

bench-consensus: venv
	$(PY) bench/bench_consensus.py

bench-ocapn: venv
	$(PY) bench/bench_ocapn.py

bench-receipts: venv
	$(PY) bench/bench_receipts.py

bench-segments: venv
	$(PY) bench/bench_segments.py

bench-raft-transport: venv
	$(PY) bench/bench_raft_transport.py

bench-engine: venv
	$(PY) bench/bench_engine.py

bench-raft-storage: venv
	$(PY) bench/bench_raft_storage.py

bench-ledger: venv
	$(PY) bench/bench_ledger.py

bench-messages: venv
	$(PY) bench/bench_messages.py

bench-tokens: venv
	$(PY) bench/bench_tokens.py

bench-write-latency: venv
	$(PY) bench/probe_write_latency.py 4 50

sim: venv
	$(PY) -m charter.consensus.sim --seeds $(SEEDS) --jobs $(JOBS)

test-soak: venv
	CHARTER_CRASH_ROUNDS=100 $(PY) -m pytest -q tests/node/process -k crash

coverage-consensus: venv
	$(PY) -m pytest -q tests/consensus --cov=charter.consensus --cov-branch --cov-report=term --cov-fail-under=95

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
