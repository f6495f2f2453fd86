"""The pipeline's work: plain functions, callable without a Prefect server."""
