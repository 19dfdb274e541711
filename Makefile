# The two commands of the README: `make run` (the main job) and `make test` (the whole suite).
# Both create/reuse .venv and install the pinned dependencies first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: run test lint typecheck unit bench install clean wordnet proto serve

$(STAMP): pyproject.toml requirements.lock requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# WordNet 3.0 for the synonym transform, from Debian's packages (needs root, like any apt-get).
wordnet:
	@test -f /usr/share/wordnet/data.noun || test -n "$$AUGSVC_WORDNET" || \
	  { apt-get update -qq && apt-get install -y -qq wordnet-base wordnet-sense-index; }

run: $(STAMP) wordnet
	$(VENV)/bin/augsvc samples runs/samples
	$(VENV)/bin/augsvc augment --spec default --seed 0 --params runs/params.jsonl runs/samples runs/augmented
	$(VENV)/bin/augsvc gallery --spec default --seed 0 -o runs/gallery.png
	@echo "gallery: runs/gallery.png   augmented photos: runs/augmented/   applied params: runs/params.jsonl"

# Regenerate the Python stubs from protos/ (a test fails when they are out of date).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. \
	  protos/augsvc/v1/augment.proto

serve: $(STAMP) wordnet
	$(VENV)/bin/augsvc serve --port 50051

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: $(STAMP) wordnet
	$(PY) -m pytest -n 2 tests

test: lint unit

bench: $(STAMP)
	$(PY) benchmarks/image_throughput.py --markdown

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
