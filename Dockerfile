# syntax=docker/dockerfile:1
# kedro-stream with the example Kedro project (payment_fraud) as its working directory.
#
#   docker build -t kedro-stream .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -p 9108:9108 \
#     -v kedro-stream-data:/app/data kedro-stream
#
# The data and the model are not in the image (.dockerignore leaves data/ out): run
# `kedro run --pipelines data_generation,training` once with the same /app/data volume, as
# docker-compose.yml's data-init service does. Secrets go to /app/conf/local/credentials.yml,
# mounted at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KEDRO_DISABLE_TELEMETRY=1
# The port HEALTHCHECK probes: keep it equal to CMD's --metrics-port when you change that.
ENV METRICS_PORT=9108

WORKDIR /app

# The plugin and what the example needs (the `example` extra) first, so that a change of conf/
# or schemas/ reuses this layer. The wheel holds kedro_stream only: the example project's code
# stays in src/, which Kedro puts on sys.path itself ([tool.kedro] source_dir).
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install ".[example]" \
    && rm -rf build src/*.egg-info

# The Kedro project around it: pyproject.toml ([tool.kedro]) above, configuration, schemas.
COPY conf/ conf/
COPY schemas/ schemas/
COPY .telemetry ./

# Non-root. Only data/ is writable (kedro run writes there; a named volume mounted on it
# starts as a copy of this skeleton, ownership included). conf/local must exist for Kedro's
# config loader, even empty.
RUN groupadd --system --gid 10001 kedro \
    && useradd --system --uid 10001 --gid kedro --create-home --home-dir /home/kedro kedro \
    && mkdir -p conf/local data/01_raw data/02_intermediate data/03_primary data/04_feature \
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
CMD ["kedro", "stream", "consume", "--topic", "payments", "--metrics-port", "9108"]
