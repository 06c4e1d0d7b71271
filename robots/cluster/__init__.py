"""The robots on many machines: Celery workers on a Redis broker, one PostgreSQL ledger.

``coordinator`` is the run's side (``robots run <robot> --cluster``: list, claim, send, watch,
report); ``worker`` is the workers' (``robots worker``: a logged-in browser per process, each
item through the engine's item lifecycle and acting protocol); ``holds`` keeps two processes
off one item; ``app`` is the Celery configuration both share.
"""
