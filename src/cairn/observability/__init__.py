"""Metrics, traces and logs: names in one place, nothing configured at import time."""
