"""The dashboard in-process: build the ASGI app over a store, fetch pages, mount it anywhere."""

from starlette.testclient import TestClient

from adapters import create_kernel
from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
from adapters.memory import InMemoryStore
from adapters.ui import create_app
from kernel import RunCreate, Status


def main() -> None:
    store = InMemoryStore()
    kernel = create_kernel(document_pipeline, store=store)
    run_id = kernel.dispatch(
        RunCreate(
            workflow_id=document_pipeline.id,
            input={"title": SAMPLE_DOCUMENTS[0].title, "text": SAMPLE_DOCUMENTS[0].text},
            idempotency_key="upload-7",
        )
    ).workflow_run_id

    # --8<-- [start:app]
    app = create_app(store)  # read-only; create_app(store, kernel=kernel, allow_actions=True)
    # adds the cancel, rerun-from and signal buttons. Serve it with any ASGI server:
    # uvicorn.run(app, host="127.0.0.1", port=8787) is what `wfk ui` does.
    with TestClient(app) as client:
        runs = client.get("/?status=PENDING")
        found = client.get("/?q=upload-7", follow_redirects=False)  # an id or a key
        run_page = client.get(f"/runs/{run_id}")
    # --8<-- [end:app]

    assert runs.status_code == 200 and run_id in runs.text
    assert found.status_code == 303 and found.headers["location"] == f"/runs/{run_id}"
    assert "Quarterly report" in run_page.text
    assert f'data-live="/runs/{run_id}/live?after=1"' in run_page.text  # a PENDING run: live
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.PENDING


def test_a_token_guards_every_request() -> None:
    # --8<-- [start:token]
    app = create_app(InMemoryStore(), token="correct-horse-battery-staple")
    with TestClient(app) as client:
        refused = client.get("/")
        allowed = client.get("/", headers={"Authorization": "Bearer correct-horse-battery-staple"})
    # --8<-- [end:token]
    assert (refused.status_code, allowed.status_code) == (401, 200)


if __name__ == "__main__":
    main()
    test_a_token_guards_every_request()
