# The mlstream image used by docker-compose.yml (init, stream app, producer, linkage app and feed).
FROM python:3.11-slim
WORKDIR /opt/mlstream
COPY pyproject.toml README.md ./
COPY mlstream mlstream
COPY producers producers
COPY apps apps
COPY tools tools
COPY models models
COPY linkage linkage
COPY spark_jobs spark_jobs
# Schemas, static files and configs are package data: a plain install.
RUN pip install --no-cache-dir .
ENV MLSTREAM_STATE_DIR=/var/lib/mlstream
EXPOSE 6066 6067
CMD ["mlstream", "--help"]
