"""What both Faust apps share: the app factory and its start-up hook, the Kafka transport, read-back of skipped records, dead-lettering."""
