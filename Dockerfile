# The mlstream image used by docker-compose.yml (init, stream app, producer, linkage app and feed).
FROM python:3.11-slim
WORKDIR /opt/mlstream
COPY pyproject.toml README.md ./
COPY mlstream mlstream
COPY producers producers
COPY stream_app stream_app
COPY models models
COPY linkage linkage
COPY spark_jobs spark_jobs
COPY schemas schemas
# Editable, so the code finds schemas/ beside it as in a checkout.
RUN pip install --no-cache-dir -e .
ENV MLSTREAM_STATE_DIR=/var/lib/mlstream
EXPOSE 6066 6067
CMD ["mlstream", "--help"]
