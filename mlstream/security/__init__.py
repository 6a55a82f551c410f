"""Security for ML data in Ranger's own policy format, enforced with Kafka's ACLs and mlstream's processing.

No Ranger plugin runs on Kafka 4.x, and Ranger masks and filters only in SQL engines, so
mlstream reads the policy files a Ranger plugin loads (:mod:`mlstream.security.policies`),
the users and teams they name (:mod:`mlstream.security.directory`), keeps both as versioned
configs (:mod:`mlstream.security.configs`) and turns the Kafka policies into ACLs
(:mod:`mlstream.security.kafka_acls`). See docs/security.md.
"""

from pathlib import Path

#: The example directory and policy files (package data): what ``mlstream demo security`` stores.
EXAMPLES = Path(__file__).resolve().parent / "examples"
