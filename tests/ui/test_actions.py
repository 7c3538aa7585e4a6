"""Actions are off by default; with them on, cancel, rerun-from and signal are POSTs that
carry the CSRF token, and each performs its kernel command."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from adapters.ui import create_app
from testing import TestKernel
from tests.ui.conftest import Client, create
from tests.ui.html import parse


def csrf(web: TestClient, run_id: str) -> str:
    """The CSRF token of a run's page, as a browser would read it from the form."""
    page = parse(web.get(f"/runs/{run_id}").text)
    return page.find("input", name="csrf_token")[0].attrs["value"]


def test_a_read_only_dashboard_shows_no_action_and_refuses_posts_with_405(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "pipeline")
    web = client()

    page = web.get(f"/runs/{run_id}").text
    posted = web.post(f"/runs/{run_id}/cancel", data={"csrf_token": "x"})

    assert '<form method="post"' not in page and "Actions" not in page
    assert posted.status_code == 405
    assert "actions are off" in posted.text
    assert tk.store.get_run(run_id).status == "PENDING"  # type: ignore[union-attr]


def test_actions_need_a_kernel(tk: TestKernel) -> None:
    with pytest.raises(ValueError, match="kernel: allow_actions needs a kernel"):
        create_app(tk.store, allow_actions=True)


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_post_without_the_right_csrf_token_is_refused(
    tk: TestKernel, client: Client, token: str | None
) -> None:
    run_id = create(tk, "pipeline")
    web = client(allow_actions=True)

    data = {} if token is None else {"csrf_token": token}
    response = web.post(f"/runs/{run_id}/cancel", data=data)

    assert response.status_code == 403
    assert "CSRF token" in response.text
    assert tk.store.get_run(run_id).status == "PENDING"  # type: ignore[union-attr]


def test_a_post_from_another_origin_is_refused_even_with_the_token(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "pipeline")
    web = client(allow_actions=True)

    response = web.post(
        f"/runs/{run_id}/cancel",
        data={"csrf_token": csrf(web, run_id)},
        headers={"Origin": "http://attacker.example"},
    )

    assert response.status_code == 403
    assert tk.store.get_run(run_id).status == "PENDING"  # type: ignore[union-attr]


def test_cancel_cancels_the_run_and_shows_it(tk: TestKernel, client: Client) -> None:
    run_id = create(tk, "approval")
    tk.run_until_idle()
    web = client(allow_actions=True)

    response = web.post(
        f"/runs/{run_id}/cancel",
        data={"csrf_token": csrf(web, run_id), "reason": "not needed"},
        follow_redirects=False,
    )

    assert (response.status_code, response.headers["location"]) == (
        303,
        f"/runs/{run_id}?done=cancel",
    )
    assert tk.store.get_run(run_id).status == "CANCELLED"  # type: ignore[union-attr]
    cancelled = tk.store.get_outbox(run_id)[-1].payload
    assert (cancelled["type"], cancelled["reason"]) == ("workflow:cancelled", "not needed")
    page = web.get(response.headers["location"]).text
    assert "cancelled the run" in page
    assert 'data-run-field="status" data-field-class="status">CANCELLED' in page


def test_cancelling_an_ended_run_says_there_is_nothing_to_cancel(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "pipeline")
    web = client(allow_actions=True)
    token = csrf(web, run_id)
    tk.run_until_idle()

    response = web.post(f"/runs/{run_id}/cancel", data={"csrf_token": token})

    assert response.status_code == 409
    assert "the run already ended: nothing to cancel" in response.text


def test_rerun_from_runs_the_stage_and_those_after_it_again(tk: TestKernel, client: Client) -> None:
    run_id = create(tk, "pipeline")
    tk.run_until_idle()
    web = client(allow_actions=True)
    page = parse(web.get(f"/runs/{run_id}").text)
    choices = [option.attrs["value"] for option in page.one("select", name="from_stage").find()]

    response = web.post(
        f"/runs/{run_id}/rerun",
        data={"csrf_token": csrf(web, run_id), "from_stage": "publish"},
        follow_redirects=False,
    )

    assert choices == ["fetch", "parse", "index", "publish"]
    assert response.headers["location"] == f"/runs/{run_id}?done=rerun"
    assert tk.store.get_run(run_id).status == "RUNNING"  # type: ignore[union-attr]
    statuses = {stage.stage_id: stage.status for stage in tk.store.get_stages(run_id)}
    assert statuses["publish"] == "PENDING" and statuses["fetch"] == "COMPLETED"


def test_a_refused_rerun_shows_the_kernels_reason_on_the_run_page(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "pipeline")
    tk.run_until_idle()
    web = client(allow_actions=True)

    response = web.post(
        f"/runs/{run_id}/rerun", data={"csrf_token": csrf(web, run_id), "from_stage": "nope"}
    )

    assert response.status_code == 409
    assert "nope" in parse(response.text).one("p", role="alert").text


def test_signal_delivers_the_payload_to_the_waiting_stage(tk: TestKernel, client: Client) -> None:
    run_id = create(tk, "approval")
    tk.run_until_idle()
    web = client(allow_actions=True)
    prefilled = parse(web.get(f"/runs/{run_id}").text).one("input", name="name").attrs["value"]

    response = web.post(
        f"/runs/{run_id}/signal",
        data={"csrf_token": csrf(web, run_id), "name": "approve", "payload": '{"approved": true}'},
        follow_redirects=False,
    )

    assert prefilled == "approve"
    assert response.headers["location"] == f"/runs/{run_id}?done=signal-delivered"
    [signal] = tk.store.get_signals(run_id)
    assert (signal.name, signal.payload, signal.is_buffered) == (
        "approve",
        {"approved": True},
        False,
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "approve", "payload": "{nope"}, "payload: not valid JSON"),
        ({"name": " ", "payload": "{}"}, "name: expected a non-empty value"),
    ],
)
def test_a_bad_signal_form_is_a_400_naming_the_field(
    tk: TestKernel, client: Client, form: dict[str, str], message: str
) -> None:
    run_id = create(tk, "approval")
    tk.run_until_idle()
    web = client(allow_actions=True)

    response = web.post(f"/runs/{run_id}/signal", data={"csrf_token": csrf(web, run_id), **form})

    assert response.status_code == 400
    assert message in response.text
    assert tk.store.get_signals(run_id) == []
