"""PySpark jobs over the project's topics: the same data, metrics, lineage and models as the stream app.

Each job is one short module with a ``run(spark, settings, ...)`` function; ``mlstream spark
<job>`` starts a local Spark session and runs it, and ``spark-submit spark_jobs/submit.py
<job>`` runs the same function on a cluster.

- ``session``: the SparkSession (Kafka and Avro connectors from Maven Central) and the table layout;
- ``avro``: Confluent-framed Avro decoding with writer schemas from the registry, and quarantine;
- ``read_topic``: a topic into a decoded table plus a quarantine table;
- ``predictions``: predictions and labels streamed into tables Spark SQL queries while they grow;
- ``splits``: reproducible train/validation/test tables and views, with up- or down-sampling;
- ``warm_start``: a river model trained on a split table, saved where the stream app loads it;
- ``score``: a Structured Streaming query scoring the records topic, metrics through the metrics API;
- ``lineage``: Atlas entities for Spark processes, tables, views and S3 paths;
- ``runner``: each job's arguments, the checks before Spark starts, and the job run in a given session.

``mlstream spark bench`` (``tools/bench/spark.py``) compares Spark with the Python consumer.
"""
