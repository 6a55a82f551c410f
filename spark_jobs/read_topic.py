"""Job ``read``: a topic into a decoded Parquet table, and what does not decode into the quarantine table.

    mlstream spark read --topic records      # -> <db>.records, bad values -> <db>.records_quarantine

Both tables are replaced on each run: they hold what the topic holds now.
"""

from __future__ import annotations

from typing import Callable

from mlstream.settings import Settings
from spark_jobs import lineage
from spark_jobs.avro import decoded_rows, quarantined
from spark_jobs.session import register_table, table_path
from spark_jobs.topics import prepare, read_batch


def run(spark, settings: Settings, kind: str = "records", say: Callable[[str], None] = print,
        schemas=None) -> dict:
    schemas = schemas or prepare(settings, kind)
    frame = read_batch(spark, settings, schemas).persist()
    try:
        say(f"spark read: decoding {schemas.topic} with writer schema id(s) "
            f"{', '.join(map(str, schemas.writer_schemas))}")
        decoded_rows(frame).write.mode("overwrite").parquet(str(table_path(settings, kind)))
        table = register_table(spark, settings, kind)
        quarantined(frame).write.mode("overwrite").parquet(str(table_path(settings, f"{kind}_quarantine")))
        quarantine = register_table(spark, settings, f"{kind}_quarantine")
        rows = spark.table(table).count()
        bad = spark.table(quarantine).count()
    finally:
        frame.unpersist()
    lineage.report_job(settings, "read", inputs=[lineage.topic_input(settings, schemas.topic)],
                       outputs=[lineage.table_output(settings, kind), lineage.table_output(settings, f"{kind}_quarantine")])
    say(f"spark read: {rows} records of {schemas.topic} in table {table}, {bad} quarantined in {quarantine}")
    return {"topic": schemas.topic, "table": table, "rows": rows, "quarantine_table": quarantine, "quarantined": bad}
