# KServe predictor, non-root; renders scans with the numba rasteriser (no OpenGL).
#   make images            (or: docker build -f Dockerfiles/serve.Dockerfile -t facet-serve .)
# BASE: any Debian/Ubuntu image whose python3 is 3.11 (constraints.txt was resolved on 3.11).
# TORCH_INDEX: a package index for torch/torchvision only, e.g. https://download.pytorch.org/whl/cpu for a
#   CPU-only predictor (~1.5 GB instead of ~6.8 GB). Empty: the default index (PyPI: the CUDA 13.0 build).
# The lines up to the torch install are the same in the three Dockerfiles, so the images share that layer.
ARG BASE=python:3.11-slim-bookworm
# Requirement lists, so that layers below are rebuilt only when what they install changes: torch's pins
# (torch, torchvision and their dependencies) for the big shared layer, and this image's third-party requirements.
FROM ${BASE} AS pins
COPY constraints.txt pyproject.toml Dockerfiles/deps.py /
RUN python3 /deps.py /pyproject.toml model serve > /requirements.txt \
    && grep -iE '^(torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z-]+|filelock|typing.extensions|sympy|mpmath|networkx|jinja2|markupsafe|fsspec|numpy|pillow)==' \
    /constraints.txt > /torch-pins.txt

FROM ${BASE}
ARG TORCH_INDEX=""
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 NUMBA_CACHE_DIR=/tmp/numba MPLCONFIGDIR=/tmp/matplotlib
COPY --from=pins /torch-pins.txt /opt/facet/torch-pins.txt
RUN python3 -c "import sys; v=sys.version_info[:2]; sys.exit(0 if v == (3, 11) else f'BASE has Python {v}, constraints.txt needs 3.11')" \
    && python3 -m venv /opt/venv \
    && pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} -c /opt/facet/torch-pins.txt torch torchvision \
    && python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"

# Third-party requirements, then the project itself (no dependencies: all are in place).
COPY --from=pins /requirements.txt /opt/facet/requirements.txt
COPY constraints.txt /opt/facet/constraints.txt
RUN pip install -c /opt/facet/constraints.txt -r /opt/facet/requirements.txt
COPY facet_lib /opt/facet/src/facet_lib
COPY pyproject.toml README.md /opt/facet/src/
RUN pip install --no-deps /opt/facet/src && rm -rf /opt/facet/src \
    && useradd --create-home --uid 1000 facet

ARG BASE
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
LABEL facet.base=${BASE} org.opencontainers.image.revision=${GIT_COMMIT} org.opencontainers.image.title=facet-serve
USER 1000
EXPOSE 8080
ENTRYPOINT ["python", "-m", "facet_lib.serving"]
CMD ["--model", "/mnt/models", "--host", "0.0.0.0", "--http_port", "8080"]
