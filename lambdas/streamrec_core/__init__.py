"""Code shared by the ingest, process and serve functions; included in every function's asset."""
