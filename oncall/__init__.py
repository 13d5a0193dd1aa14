"""Incident remediation pipelines on Prefect."""

__version__ = "0.1.0"
