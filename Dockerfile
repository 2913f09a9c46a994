# The Airflow image of the Docker Compose stack: the official Airflow 3.3.2 image plus this project's
# dependencies. The project's code (dags/, pipelines/, sql/, expectations/, catalogue/, config/) is
# mounted by docker-compose.yml rather than copied, so edits show up without a rebuild; the editable
# install only registers the `pipelines` package and its dependencies. No secret is baked in.
FROM apache/airflow:3.3.2-python3.11

USER root
# igraph/networkit ship manylinux wheels; build tools only as a fallback for a missing wheel
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:0 pyproject.toml README.md /opt/esn/
COPY --chown=airflow:0 pipelines /opt/esn/pipelines
# pin Airflow to the image's version so the project's range never upgrades or downgrades it
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -e /opt/esn

ENV PYTHONPATH=/opt/esn
WORKDIR /opt/airflow
