"""Fixtures for postgres (filled in by its service work)."""
