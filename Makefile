# The two commands of the README: `make run` (the main job) and `make test` (the whole suite).
# Both create/reuse .venv and install the pinned dependencies first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: run test lint unit bench fuzz install clean wordnet chromium proto serve buf

$(STAMP): pyproject.toml requirements.lock requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# WordNet 3.0 for the synonym transform, from Debian's packages (needs root, like any apt-get),
# and the SCOWL word lists the text quality benchmark and its test check substitutes against.
wordnet:
	@test -f /usr/share/wordnet/data.noun || test -n "$$AUGSVC_WORDNET" || \
	  { apt-get update -qq && apt-get install -y -qq wordnet-base wordnet-sense-index; }
	@test -f /usr/share/dict/american-english-large -a -f /usr/share/dict/british-english-large || \
	  { apt-get update -qq && apt-get install -y -qq wamerican-large wbritish-large; }

# Headless Chromium and its WebDriver for the browser tests of `augsvc explore` (tests/explore),
# from Debian's packages (needs root, like any apt-get); Selenium is given both paths, so it
# downloads nothing.
chromium:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
	  { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

# buf (the Go gRPC client the reflection test calls) from npm, exact version pinned by
# tools/buf/package-lock.json; npm comes from Debian's packages when missing (needs root).
BUF := tools/buf/node_modules/.bin/buf
$(BUF): tools/buf/package.json tools/buf/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm; }
	npm ci --prefix tools/buf --no-audit --no-fund --loglevel=error
	touch $(BUF)

buf: $(BUF)

# The main job: start the service, train the CNN on digits it streams, report under runs/<time>/.
run: $(STAMP) wordnet
	$(VENV)/bin/augsvc-train demo --out runs

# Regenerate the Python stubs from protos/ into augsvc/wire/v1/ (a test fails when they are out
# of date). The -I mapping names the file augsvc/wire/v1/augment.proto, so the stubs import each
# other from augsvc.wire.v1; the proto package, and so every service and message name, stays augsvc.v1.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iaugsvc/wire/v1=protos/augsvc/v1 --python_out=. --pyi_out=. \
	  --grpc_python_out=. augsvc/wire/v1/augment.proto

serve: $(STAMP) wordnet
	$(VENV)/bin/augsvc serve --port 50051

# ruff, mypy, and the import-linter contracts of pyproject.toml (the layers of docs/architecture.md)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: $(STAMP) wordnet buf chromium
	$(PY) -m pytest -n 2 tests

test: lint unit

# Every benchmark script (about 7 minutes): the service and JPEG-folder ones as smoke runs (--quick;
# their full runs take 5 and 9 minutes, see BENCHMARKS.md), the text one only where its nlpaug
# baseline is installed (the JPEG one's DALI row only where DALI is).
bench: $(STAMP)
	$(PY) benchmarks/image_throughput.py --markdown
	$(PY) benchmarks/jpeg_folder.py --quick --markdown
	$(PY) benchmarks/optimizer_step.py --markdown
	$(PY) benchmarks/train_throughput.py --markdown
	$(PY) benchmarks/service_throughput.py --quick --markdown
	@if $(PY) -c "import nlpaug" 2>/dev/null; then $(PY) benchmarks/text_throughput.py --quick; \
	else echo "text_throughput.py skipped: its baseline is not installed" \
	  "(pip install nlpaug==1.1.11 gensim==4.4.0 into $(VENV))"; fi

# The long fuzz run (a few minutes): FUZZ_EXAMPLES generated hostile requests and the known-bad
# corpus against a real server (tests/service/test_fuzz.py runs a few hundred in `make test`).
# Prints cases by RPC and status; failing requests are saved under runs/fuzz-<time>/.
FUZZ_EXAMPLES ?= 5000
FUZZ_SEED     ?= 0
fuzz: $(STAMP)
	$(PY) benchmarks/fuzz_service.py --examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED) --corpus

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
