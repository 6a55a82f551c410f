"""Job ``read``: a topic into a decoded Parquet table, and what does not decode into the quarantine table.

    mlstream spark read --topic records      # -> <db>.records, bad values -> <db>.records_quarantine

Both tables are replaced on each run: they hold what the topic holds now.
"""

from __future__ import annotations

from typing import Callable

from mlstream.settings import Settings
from spark_jobs import lineage
from spark_jobs.avro import commented, decoded_rows, quarantined
from spark_jobs.session import write_table
from spark_jobs.topics import prepare, read_batch


def run(spark, settings: Settings, kind: str = "records", say: Callable[[str], None] = print,
        schemas=None) -> dict:
    schemas = schemas or prepare(settings, kind)
    frame = read_batch(spark, settings, schemas).persist()
    try:
        say(f"spark read: decoding {schemas.topic} with writer schema id(s) "
            f"{', '.join(map(str, schemas.writer_schemas))}")
        table = write_table(spark, settings, commented(decoded_rows(frame), schemas.reader_schema), kind,
                            comment=f"{schemas.topic} decoded")
        quarantine = write_table(spark, settings, commented(quarantined(frame)), f"{kind}_quarantine",
                                 comment=f"what of {schemas.topic} did not decode, with the reason")
        rows = spark.table(table).count()
        bad = spark.table(quarantine).count()
    finally:
        frame.unpersist()
    lineage.report_job(settings, "read", inputs=[lineage.topic_input(settings, schemas.topic)],
                       outputs=[lineage.catalog_output(spark, settings, kind, source_topic=schemas.topic),
                                lineage.catalog_output(spark, settings, f"{kind}_quarantine")])
    say(f"spark read: {rows} records of {schemas.topic} in table {table}, {bad} quarantined in {quarantine}")
    return {"topic": schemas.topic, "table": table, "rows": rows, "quarantine_table": quarantine, "quarantined": bad}
