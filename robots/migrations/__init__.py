"""The ledger's schema history (Alembic), the same for SQLite and PostgreSQL.

``robots.ledger.Ledger`` brings a ledger up to date when it opens one: a new file or database
gets every revision; a ledger written before these migrations existed (tables made by
``create_all``) is recognised and stamped at the first revision, then upgraded. Add a revision
with ``alembic -c robots/migrations/alembic.ini revision -m "..."`` and set ``HEAD`` below.
"""

HEAD = "0004_console"
