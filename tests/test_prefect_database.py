"""`scripts/prefect_stack.py database`: the stack's PostgreSQL database, created when missing.

Against the machine's PostgreSQL server (127.0.0.1:5432, trust auth), with a database name of this
test's own that it drops again. A server that does not answer is an error naming it, never a skip.
"""

import subprocess
import sys
import uuid

from tests.project_copy import REPO, free_port

SHARED = "postgresql://127.0.0.1:5432"


def database(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/prefect_stack.py", "database", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def psql(sql: str) -> str:
    done = subprocess.run(["psql", f"{SHARED}/postgres", "-tAc", sql], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"the machine's PostgreSQL at {SHARED} did not answer: {done.stderr}"
    return done.stdout.strip()


def test_the_database_is_created_once_and_named_for_asyncpg():
    name = f"maskmotion_test_{uuid.uuid4().hex[:8]}"
    try:
        first, second = database(f"{SHARED}/{name}"), database(f"{SHARED}/{name}")
        assert first.returncode == 0, first.stderr
        assert f"created database {name}" in first.stderr
        assert second.returncode == 0 and "created" not in second.stderr  # already there: left alone
        assert first.stdout.strip() == second.stdout.strip() == f"postgresql+asyncpg://127.0.0.1:5432/{name}"
        assert psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "1"
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}"')


def test_a_server_that_does_not_answer_is_named_and_bad_urls_are_refused():
    port = free_port()  # nothing listens there
    down = database(f"postgresql://user:secret@127.0.0.1:{port}/maskmotion_prefect")
    assert down.returncode != 0 and f"PostgreSQL at 127.0.0.1:{port} is not reachable" in down.stderr
    assert "secret" not in down.stderr
    assert "must be a postgresql:// URL" in database("mysql://127.0.0.1/x").stderr
    assert "must name one database" in database(f"{SHARED}/").stderr
