"""What both Faust apps share: the app factory, the Kafka transport, read-back of skipped records, dead-lettering."""
