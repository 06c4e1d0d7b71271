"""The control room in the browser (`robots console`): the open-exceptions queue decided
online, runs, and the people who may do what.

Server-rendered (Starlette + Jinja2, plain forms, no front-end build). It reads the
workspace's ledger (SQLite, or the cluster's PostgreSQL: the same tables) and acts only
through the commands people already run: a reviewer's decisions are applied by `robots
apply` on a decisions file (live re-read, hard rules no reviewer can waive, exactly once, a
result per row), and runs are started as `robots run`, in child processes as the
scheduler's are.

accounts.py  roles, argon2 password hashes, the signing key
app.py       the routes: sign-in, 总览 (charts: static/overview.js, Chart.js served from
             static/), 待处理 (the queue and its decisions), 运行 (start, stop, progress,
             evidence), 计划 (pause, resume, run now), 审计
"""
