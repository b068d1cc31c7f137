"""One construct per concern: stream, tables, functions, processing, api, monitoring."""
