# syntax=docker/dockerfile:1
# Diffusion Lab: the web app, the API and the trained weights in one image.
#   docker build -t diffusion-lab .                                   # CPU build of torch (default)
#   docker build --build-arg TORCH_VARIANT=cu128 -t diffusion-lab:cuda .   # a CUDA build of torch 2.13.0
#   docker run --rm -p 8000:8000 diffusion-lab                        # then open http://127.0.0.1:8000
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a wheel of the project (app/ plus templates/, static/ and the recorded bench/results/ as data files) ----
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app/ app/
COPY templates/ templates/
COPY static/ static/
COPY bench/results/ bench/results/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- vendor: Pyodide with numpy and the snippet editor, fetched by npm and pip and checked by vendor/build.py ----
FROM ${PYTHON_IMAGE} AS vendor
# Debian's own nodejs and npm (whatever this release ships): npm only installs what vendor/package-lock.json pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY vendor/ vendor/
RUN python vendor/build.py

# ---- runtime: a venv with torch, the wheel and the weights; runs as a non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
# cpu, or a CUDA variant PyTorch publishes for torch 2.13.0 (e.g. cu126, cu128); the wheel brings CUDA's
# runtime libraries, so the host needs only the NVIDIA driver and container toolkit.
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A C++ compiler with OpenMP: on the CPU the server compiles its networks with AOTInductor once it is up
# (DIFFUSION_LAB_COMPILE); without one it would log why and sample eagerly, at half the speed. Debian's own g++.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
# torch first, from PyTorch's own index, in a layer of its own: it is by far the largest and changes least.
RUN python -m venv /opt/venv \
    && pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
COPY --from=build /wheels/ /tmp/wheels/
RUN pip install /tmp/wheels/diffusion_lab-*.whl \
    && rm -rf /tmp/wheels \
    && groupadd --system --gid 10001 lab \
    && useradd --system --uid 10001 --gid lab --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lab
COPY models/ /opt/diffusion-lab/models/
COPY --from=vendor /src/vendor/dist/ /opt/diffusion-lab/vendor/

ENV DIFFUSION_LAB_MODEL_DIR=/opt/diffusion-lab/models \
    DIFFUSION_LAB_VENDOR_DIR=/opt/diffusion-lab/vendor \
    DIFFUSION_LAB_DEVICE=auto \
    DIFFUSION_LAB_LOG_FORMAT=json \
    DIFFUSION_LAB_SHUTDOWN_GRACE_S=8
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# exec form: the server is PID 1 and gets SIGTERM itself, which starts the graceful drain.
CMD ["diffusion-lab", "serve", "--host", "0.0.0.0", "--port", "8000"]
