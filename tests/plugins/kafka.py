"""Fixtures for kafka (filled in by its service work)."""
