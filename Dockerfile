# syntax=docker/dockerfile:1
# The example stream as a deployment ships a Kedro project: its wheel and its conf archive (what
# `kedro package` writes), installed beside the kedro-stream wheel. The image holds no source
# tree and no pyproject.toml: `kedro-stream consume` runs the installed package, named by
# KEDRO_STREAM_PACKAGE, with the configuration KEDRO_STREAM_CONF_SOURCE names.
#
#   docker build -t kedro-stream .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -p 9108:9108 \
#     -v kedro-stream-data:/app/data kedro-stream
#
# The data and the model are not in the image: run `python -m payment_fraud --pipelines
# data_generation,training` once with the same /app/data volume, as docker-compose.yml's
# data-init service does. Secrets: mount a credentials.yml (e.g. at
# /run/secrets/credentials.yml) and set KEDRO_STREAM_CREDENTIALS to its path; its entries may
# read the environment (${oc.env:KAFKA_PASSWORD}). See docs/deploy/packaged.md.

# --- 1. package: `make package`, inside the build ---------------------------------------------
FROM python:3.11-slim AS package
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src/ src/
COPY schemas/ schemas/
COPY deploy/example-wheel/ deploy/example-wheel/
COPY conf/ conf/
RUN pip wheel --no-deps --wheel-dir dist . deploy/example-wheel \
    && tar --exclude='local/*.yml' -czf dist/conf-payment_fraud.tar.gz conf

# --- 2. the service: the wheels installed, the conf archive, nothing else ---------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KEDRO_DISABLE_TELEMETRY=1 \
    KEDRO_STREAM_PACKAGE=payment_fraud \
    KEDRO_STREAM_CONF_SOURCE=/app/conf-payment_fraud.tar.gz
# The port HEALTHCHECK probes: keep it equal to CMD's --metrics-port when you change that.
ENV METRICS_PORT=9108

COPY --from=package /build/dist/*.whl /tmp/wheels/
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels

WORKDIR /app
COPY --from=package /build/dist/conf-payment_fraud.tar.gz ./

# Non-root. Only data/ is writable: the catalog's relative paths and the state stores
# (stream.yml state_dir) start at the working directory, as under `kedro run`. A named volume
# mounted on it starts as a copy of this skeleton, ownership included.
RUN groupadd --system --gid 10001 kedro \
    && useradd --system --uid 10001 --gid kedro --create-home --home-dir /home/kedro kedro \
    && mkdir -p data/01_raw data/02_intermediate data/03_primary data/04_feature \
       data/05_model_input data/06_models data/07_model_output data/08_reporting \
    && chown -R kedro:kedro data
USER kedro

# /metrics, /healthz, /readyz
EXPOSE 9108

# /healthz: the loop (or the keep-alive of a long run) keeps turning; urlopen raises on 503.
# No curl in the slim image. The start period covers importing the stack and booting the
# namespace (model loaded) before the metrics server starts.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${METRICS_PORT}/healthz', timeout=4)"

# Exec form: the process gets SIGTERM itself and finishes its batch, commits, leaves the group.
CMD ["kedro-stream", "consume", "--topic", "payments", "--metrics-port", "9108"]
