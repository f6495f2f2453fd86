"""Two set-up steps of the local Prefect stack (scripts/local_stack.sh) that are easier in Python.

    python scripts/prefect_stack.py database postgresql://127.0.0.1:5432/maskmotion_prefect
        creates the database when it is missing (asyncpg, which the Prefect server uses too) and prints
        the server's connection URL (``postgresql+asyncpg://...``) for PREFECT_API_DATABASE_CONNECTION_URL
    python scripts/prefect_stack.py crash-detection 90
        (re)creates the automation that marks a flow run Crashed when its heartbeats stop for 90 s

The URL comes from the environment (MASKMOTION_PG_URL), never from a tracked file: it may hold a password.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

CRASH_AUTOMATION = "maskmotion: crash silent flow runs"


def split_database_url(url: str) -> tuple[str, str, str]:
    """(asyncpg URL of the maintenance database ``postgres``, database name, the server's SQLAlchemy URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise SystemExit(f"MASKMOTION_PG_URL must be a postgresql:// URL, got scheme '{parts.scheme}'")
    name = parts.path.lstrip("/")
    if not name or "/" in name:
        raise SystemExit("MASKMOTION_PG_URL must name one database: postgresql://[user@]host:port/NAME")
    plain = parts._replace(scheme="postgresql")
    maintenance = urlunsplit(plain._replace(path="/postgres"))
    return maintenance, name, urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


async def ensure_database(url: str, timeout_s: float = 10) -> str:
    import asyncpg

    maintenance, name, server_url = split_database_url(url)
    host = urlsplit(url).netloc.rsplit("@", 1)[-1]  # never print a password
    try:
        conn = await asyncpg.connect(maintenance, timeout=timeout_s)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(f"PostgreSQL at {host} is not reachable ({type(exc).__name__}: {exc})") from exc
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # CREATE DATABASE takes no parameters: quote the name as an identifier
            await conn.execute('CREATE DATABASE "{}"'.format(name.replace('"', '""')))
            print(f"created database {name} on {host}", file=sys.stderr)
    finally:
        await conn.close()
    return server_url


def crash_detection(after_s: float) -> None:
    """A proactive automation: a flow run whose heartbeat is not followed, within ``after_s``, by
    another heartbeat or a final state is marked Crashed (Prefect's recipe for runs whose process
    or machine died; the flow runs send heartbeats every PREFECT_FLOWS_HEARTBEAT_FREQUENCY s)."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    while True:  # idempotent: replace the one an earlier `up` made
        try:
            Automation.read(name=CRASH_AUTOMATION).delete()
        except ValueError:  # read() raises when no automation has the name
            break
    Automation(
        name=CRASH_AUTOMATION,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {after_s:.0f} s: the flow run's process or machine is gone",
            )
        ],
    ).create()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("database").add_argument("url")
    sub.add_parser("crash-detection").add_argument("after_s", type=float)
    args = parser.parse_args(argv)
    if args.command == "database":
        print(asyncio.run(ensure_database(args.url)))
    else:
        crash_detection(args.after_s)


if __name__ == "__main__":
    main()
