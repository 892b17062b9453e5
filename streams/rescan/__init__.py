"""Retro-scan: verdicts stay true when an engine's signatures change (README "Retro-scan").

- :mod:`.stage` — the Faust wiring.  Every worker watches the scanner registry; the first to
  record a new signatures version in Postgres (``scanner_signatures``) opens a rescan job:
  once per change, however many workers and heartbeats there are.
- :mod:`.jobs` — jobs in Postgres, held under a lease by one worker at a time, resumable.
- :mod:`.select` / :mod:`.execute` — a job reads what the scanner judged in its window
  (Cassandra ``verdicts_by_scanner``), keeps the documents whose current verdict was made with
  other signatures, one per content, and sends ``scan.rescans`` requests at a bounded rate.
- Scanners read ``scan.rescans`` at low priority (scanners/rescans.py); only a verdict that
  changed becomes a fact on ``scan.verdicts``, marked as a rescan.
- :mod:`.follow` — a changed verdict is copied to the other documents with the same bytes,
  counted, and logged for alerts.
- :mod:`.plan` — the pure rules, tested without services.
"""
