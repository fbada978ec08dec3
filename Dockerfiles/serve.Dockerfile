# KServe predictor: slim, multi-stage, non-root. Renders scans with the numba rasteriser (no OpenGL).
#   docker build -f Dockerfiles/serve.Dockerfile -t "$FACET_IMAGE_PREFIX/facet-serve:$FACET_IMAGE_TAG" .
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY facet_lib ./facet_lib
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt ".[model,serve]"

FROM python:3.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 NUMBA_CACHE_DIR=/tmp/numba
RUN useradd --create-home --uid 1000 facet
USER 1000
EXPOSE 8080
ENTRYPOINT ["python", "-m", "facet_lib.serving"]
CMD ["--model", "/mnt/models", "--host", "0.0.0.0", "--http_port", "8080"]
