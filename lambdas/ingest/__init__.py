"""The ingest function: POST /v1/events -> validated events -> Kinesis."""
