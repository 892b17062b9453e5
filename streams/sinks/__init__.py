"""The projections' writers: Postgres (documents) and Cassandra (verdicts)."""

from __future__ import annotations


class UnknownSchema(ValueError):
    """A record of a schema a sink does not project: a contract change the sink was not
    updated for.  Raised, never skipped, so the record lands in the dead-letter topic."""
