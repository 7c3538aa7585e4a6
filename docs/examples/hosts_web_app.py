"""Embedding the kernel in a web app: request handlers dispatch commands, a worker runs beside.

A plain WSGI app (any framework works the same way): ``POST /runs`` creates a
run, ``GET /runs/<id>`` shows it. A ``WorkerHost`` started with the app runs
the jobs in background threads and is stopped (drained) at shutdown.
"""

# --8<-- [start:app]
import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from adapters import create_kernel
from adapters.demo import document_pipeline
from adapters.hosts import WorkerHost
from adapters.memory import InMemoryStore
from kernel import KernelError, RunCreate
from kernel.convert import to_json  # results and records in their JSON form

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

store = InMemoryStore()  # SqliteStore(path) or PostgresStore(dsn) in production
kernel = create_kernel(document_pipeline, store=store)
worker = WorkerHost(kernel, store, worker_id="web-1", orchestration_interval=timedelta(seconds=0.1))


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    try:
        if method == "POST" and path == "/runs":
            body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0)))
            created = kernel.dispatch(
                RunCreate(
                    workflow_id=body["workflow_id"],
                    input=body["input"],
                    idempotency_key=environ.get("HTTP_IDEMPOTENCY_KEY"),  # safe client retries
                )
            )
            return respond(start_response, "201 Created", to_json(created))
        if method == "GET" and path.startswith("/runs/"):
            run = store.get_run(path.removeprefix("/runs/"))
            if run is None:
                return respond(start_response, "404 Not Found", {"error": "no such run"})
            return respond(start_response, "200 OK", to_json(run))
        return respond(start_response, "404 Not Found", {"error": "no such route"})
    except KernelError as error:  # bad input, unknown workflow, ...: the client's mistake
        return respond(start_response, "422 Unprocessable Entity", {"error": str(error)})


def respond(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


# At startup: worker.start(). At shutdown: worker.stop().
# --8<-- [end:app]


def call(method: str, path: str, body: Any = None) -> tuple[str, Any]:
    """Call the WSGI app in-process, as a server would."""
    import io
    from wsgiref.util import setup_testing_defaults

    payload = json.dumps(body).encode() if body is not None else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
    }
    setup_testing_defaults(environ)
    status: list[str] = []
    chunks = app(environ, lambda line, headers: status.append(line))
    return status[0], json.loads(b"".join(chunks))


def main() -> None:
    import time

    import attrs

    from adapters.demo import SAMPLE_DOCUMENTS

    worker.start()
    try:
        status, created = call(
            "POST",
            "/runs",
            {"workflow_id": "document-pipeline", "input": attrs.asdict(SAMPLE_DOCUMENTS[2])},
        )
        assert status == "201 Created" and created["status"] == "PENDING"
        deadline = time.monotonic() + 10
        while (shown := call("GET", f"/runs/{created['workflow_run_id']}")[1])["status"] not in (
            "COMPLETED",
            "FAILED",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert shown["output"]["categories"] == ["sports"]
        status, problem = call("POST", "/runs", {"workflow_id": "nope", "input": {}})
        assert status.startswith("422") and "not registered" in problem["error"]
    finally:
        worker.stop()


if __name__ == "__main__":
    main()
