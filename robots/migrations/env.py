"""Alembic's entry: run on the connection the ledger hands over (``config.attributes``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from robots.ledger import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the alembic command line, authoring a revision
    with create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://").connect() as c:
        context.configure(connection=c, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
