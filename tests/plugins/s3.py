"""Fixtures for s3 (filled in by its service work)."""
