"""Producers: turn a dataset into a live feed of records and delayed labels."""
