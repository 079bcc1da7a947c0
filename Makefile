# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
# CPU wheel by default; on a GPU machine: make demo TORCH="torch==2.13.0 --index-url <your CUDA index>"
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint bench clean browser docs docs-serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet "pip>=23"

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ecgscope demo --out runs/demo --overwrite

# the viewer's end-to-end test drives Debian's headless Chromium; installed here when missing (needs root
# and the Debian archive), and the target fails, loudly, where it cannot be
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing chromium and chromium-driver for the viewer test (apt-get)"; \
	  { [ "$$(id -u)" = 0 ] && SUDO= || SUDO=sudo; } ; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver \
	  || { echo "ERROR: could not install chromium and chromium-driver, which the viewer test needs"; exit 1; }; }

test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --maxschedchunk 1 --durations=10

# the documentation site, into build/site; --strict fails on a broken link, anchor or API reference
# (make test builds it too, in tests/test_docs.py)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/simulator_speed.py
	$(BIN)/python benchmarks/simulator_calibration.py

clean:
	rm -rf $(VENV) runs build .pytest_cache .ruff_cache
