"""Feature views: how records and labels of any Avro shape become what scoring takes."""
