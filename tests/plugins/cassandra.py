"""Fixtures for cassandra (filled in by its service work)."""
