# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install install-dev vendor chromium exiftool nginx wrk cxx axe run test bench gpu-check screenshots docker clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps make both installs idempotent: they rerun only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# exiftool, which reads back the XMP packet every generated PNG carries (tests/api/test_png_metadata_api.py).
exiftool:
	@command -v exiftool >/dev/null 2>&1 || { \
	  echo "installing Debian's exiftool for the metadata tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libimage-exiftool-perl; }

# nginx, which the three-replica test runs in front of three servers with deploy/nginx.conf
# (tests/deploy/test_replicas_nginx.py).
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  echo "installing Debian's nginx for the replica tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx; }

# A C++ compiler with OpenMP, with which torch's inductor compiles the networks (DIFFUSION_LAB_COMPILE and its tests).
cxx:
	@command -v g++ >/dev/null 2>&1 || { \
	  echo "installing Debian's g++ for the compiled networks"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq g++; }

# wrk, the HTTP load generator of bench/instruments.py.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk for the benchmarks"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }

# axe-core, which the browser tests load into every page to check its accessibility (pinned by the lock file).
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	touch $@

axe: $(AXE)

# Pyodide 0.27.7 with numpy and the snippet editor (CodeMirror 6), which the pages with runnable snippets serve from
# vendor/dist/ (git ignores it): fetched with npm and pip, every Pyodide file checked against its pinned sha256.
VENDOR := vendor/dist/manifest.json
$(VENDOR): vendor/build.py vendor/package.json vendor/package-lock.json vendor/editor.js vendor/pyodide-core.sha256 \
           vendor/numpy-carrier.txt | $(PY)
	$(PY) vendor/build.py

vendor: $(VENDOR)

run: install vendor
	$(VENV)/bin/diffusion-lab serve --host $(HOST) --port $(PORT)

test: install-dev chromium exiftool nginx cxx axe vendor
	$(PY) -m pytest -q

# Every benchmark; BENCHMARKS.md says what the figures mean. Minutes on a small CPU.
bench: install-dev wrk
	$(PY) bench/instruments.py
	$(PY) bench/matmul_rate.py
	$(PY) bench/sampling.py
	$(PY) bench/sampling_concurrency.py
	$(PY) bench/scaling.py

# The GPU path checked and timed in one call (a few minutes on a CUDA machine; a smoke run on a CPU, where the CUDA
# checks are recorded as skipped): writes bench/results/gpu_check.json. Needs only `make install`.
gpu-check: install
	$(PY) bench/gpu_check.py

screenshots: install-dev chromium
	$(PY) bench/screenshots.py

# The container image (CPU torch); TORCH_VARIANT=cu128 make docker for a CUDA build. See deploy/ to run it.
TORCH_VARIANT ?= cpu
docker:
	docker build --build-arg TORCH_VARIANT=$(TORCH_VARIANT) -t diffusion-lab:$(TORCH_VARIANT) .

clean:
	rm -rf $(VENV) .pytest_cache tests/browser/node_modules vendor/node_modules vendor/dist
