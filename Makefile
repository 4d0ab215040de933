# Two commands matter: `make demo` and `make test`. Everything installs from the hash-pinned locks.
# The locks pin CPython 3.11 wheels for Linux x86-64: python3.11 where there is one, else python3 (checked).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
DEMO_OUT := build/demo

.PHONY: demo test lint unit bench bench-launch bench-stream bench-scale bench-memory soak audit lock sample-model sample-penguins sample-lake sample-png metadata clean

$(VENV)/bin/python:
	@$(PYTHON) scripts/check_python.py
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): template/requirements.txt | $(VENV)/bin/python
	$(PIP_INSTALL) -r template/requirements.txt
	$(PY) -m pip check
	touch $@

$(DEV): $(RUNTIME) tests/requirements.txt
	$(PIP_INSTALL) -r template/requirements.txt -r tests/requirements.txt
	$(PY) -m pip check
	touch $@

demo: $(RUNTIME)
	$(PY) template/main.py --input samples/mnist/images.txt.gz --output $(DEMO_OUT)/predictions \
		--model samples/model --runner DirectRunner
	PYTHONPATH=template $(PY) -m pipeline.evaluate --predictions '$(DEMO_OUT)/predictions-*.jsonl' \
		--labels samples/mnist/t10k-labels-idx1-ubyte.gz --keys 8000:9999

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.cloudbuild cloudbuild.yaml
	$(PY) scripts/template_metadata.py --check

# Tests run in up to four processes (two on a 2-core machine), a test module's tests in one of them.
test: lint
	$(PY) -m pytest --numprocesses=auto --maxprocesses=4 --dist=loadfile

bench: $(DEV)
	$(PY) benchmarks/run.py

bench-launch: $(DEV)
	$(PY) benchmarks/launch.py

bench-stream: $(DEV)
	$(PY) benchmarks/stream.py

# One model copy per SDK process against one per VM, with a large model (made under build/ if missing).
bench-memory: $(DEV)
	$(PY) benchmarks/model_memory.py

bench-scale: $(DEV)
	$(PY) benchmarks/scale.py

soak: $(DEV)
	$(PY) benchmarks/soak.py

audit: $(DEV)
	$(PY) scripts/audit.py

# Regenerate the locks from the direct dependencies (needs `uv`; not part of test or demo). The GPU lock is
# constrained by the CPU lock, so it comes after it.
lock:
	uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
		--no-header -o template/requirements.txt template/requirements.in
	uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
		--no-header -o template/requirements-gpu.txt template/requirements-gpu.in
	uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
		--no-header -o tests/requirements.txt tests/requirements.in

sample-model: $(RUNTIME)
	rm -rf samples/model
	$(PY) scripts/train_sample_model.py

# The penguins table (from the palmerpenguins package, a dev dependency) and its classifier.
sample-penguins: $(DEV)
	rm -rf samples/penguins/model
	$(PY) scripts/train_penguins_model.py

# The penguins rows as a data lake holds them: a Parquet file, a folder of Parquet parts, an Avro file.
sample-lake: $(RUNTIME)
	rm -rf samples/penguins/parts
	$(PY) scripts/make_lake_samples.py

# 200 held-out digits as PNG files and samples/model behind a PNG decoder (no retraining).
sample-png: $(RUNTIME)
	rm -rf samples/png/model samples/png/digits
	$(PY) scripts/make_png_sample.py

metadata: $(RUNTIME)
	$(PY) scripts/template_metadata.py --write

clean:
	rm -rf build .pytest_cache .ruff_cache
