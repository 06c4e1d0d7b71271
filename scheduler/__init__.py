"""The scheduler service: APScheduler 3 firing `robots run` in child processes.

Its files live here too: the persistent job store and run history (``jobs.sqlite3``).
"""
