# The Airflow image of the Docker Compose stack: the official Airflow 3.3.2 image plus this project's
# dependencies. The project's code (dags/, pipelines/, sql/, expectations/, catalogue/, config/) is
# mounted by docker-compose.yml rather than copied, so edits show up without a rebuild; the editable
# install only registers the `pipelines` package. Its dependencies come from uv.lock. No secret is baked in.
FROM apache/airflow:3.3.2-python3.11

USER root
# igraph/networkit ship manylinux wheels; build tools only as a fallback for a missing wheel
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:0 pyproject.toml uv.lock README.md /opt/esn/
COPY --chown=airflow:0 pipelines /opt/esn/pipelines
# the exact versions of uv.lock, hashes checked: `uv export --locked` fails if the lock does not match
# pyproject.toml, and --no-deps installs the lock's complete list without resolving again (so nothing is
# upgraded behind the lock's back; the lock pins apache-airflow to the image's 3.3.2, and leaves out
# dbt-core-experimental-parser, see [tool.uv] in pyproject.toml). Then the project itself, without deps.
RUN pip install --no-cache-dir "uv==0.13.9" \
    && uv export --locked --no-dev --no-emit-project --format requirements-txt \
         --project /opt/esn -o /tmp/esn-requirements.txt \
    && pip install --no-cache-dir --no-deps --require-hashes -r /tmp/esn-requirements.txt \
    && pip install --no-cache-dir --no-deps -e /opt/esn \
    && rm /tmp/esn-requirements.txt

ENV PYTHONPATH=/opt/esn
WORKDIR /opt/airflow
