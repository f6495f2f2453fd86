"""Talks to a running Prefect server for the scale-out tests and bench (PREFECT_API_URL names it).

    python -m tests.stack_client submit generate/batch '<parameters json>' ['<parameters json>' ...]
        one flow run per parameters object; prints their ids (JSON list)
    python -m tests.stack_client runs ID [ID ...]
        prints [{id, state, name, admitted, start, end, message}] (times in epoch seconds or null;
        admitted: the first Pending or Running state, when a worker took the run into a pool slot)

A separate process on purpose: the test process has Prefect settings of its own (the test harness).
"""

import asyncio
import json
import sys

from prefect.client.orchestration import get_client


async def submit(deployment: str, parameter_sets: list[dict]) -> list[str]:
    async with get_client() as client:
        found = await client.read_deployment_by_name(deployment)
        ids = []
        for parameters in parameter_sets:
            run = await client.create_flow_run_from_deployment(found.id, parameters=parameters)
            ids.append(str(run.id))
        return ids


async def runs(ids: list[str]) -> list[dict]:
    async with get_client() as client:
        out = []
        for run_id in ids:
            run = await client.read_flow_run(run_id)
            taken = [
                st.timestamp.timestamp()
                for st in await client.read_flow_run_states(run_id)
                if st.type.value in ("PENDING", "RUNNING")
            ]
            out.append(
                {
                    "id": run_id,
                    "state": run.state.type.value,
                    "name": run.state.name,
                    "admitted": min(taken) if taken else None,
                    "start": run.start_time.timestamp() if run.start_time else None,
                    "end": run.end_time.timestamp() if run.end_time else None,
                    "message": run.state.message,
                }
            )
        return out


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "submit":
        print(json.dumps(asyncio.run(submit(args[0], [json.loads(a) for a in args[1:]]))))
    elif command == "runs":
        print(json.dumps(asyncio.run(runs(args))))
    else:
        raise SystemExit(f"unknown command {command}")
