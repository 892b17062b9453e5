"""Fixtures for clamav (filled in by its service work)."""
