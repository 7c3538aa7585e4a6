"""Safety: user data is escaped everywhere, the token guards every request, a
non-loopback address needs a token, unknown hosts are refused, and every response
forbids inline scripts and framing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.ui import check_binding
from adapters.ui.security import TOKEN_COOKIE
from adapters.ui.views.live import Changes
from testing import TestKernel
from tests.ui.conftest import Client, create

SCRIPT = "<script>alert('pwned')</script>"
TOKEN = "s3cret-token-of-24-chars"


def test_script_in_a_run_input_and_error_is_inert_text_on_every_page(
    tk: TestKernel, client: Client
) -> None:
    run_id = create(tk, "exploding", title=SCRIPT, idempotency_key=SCRIPT)
    tk.run_until_idle()
    web = client()

    pages = [web.get(url).text for url in ("/", f"/runs/{run_id}", "/outbox")]

    assert all("<script>alert" not in page for page in pages)
    run_page = pages[1]
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in run_page  # input and error
    assert "RuntimeError: cannot read &lt;script&gt;" in run_page
    searched = web.get(f"/?q={SCRIPT}", follow_redirects=False)
    assert searched.headers["location"] == f"/runs/{run_id}"
    assert "<script>alert" not in web.get("/?q=<script>nothing").text


def test_script_in_user_data_reaches_the_live_stream_only_as_json_text(
    tk: TestKernel,
) -> None:
    """The stream carries data as JSON strings; ``live.js`` sets them as ``textContent``."""
    run_id = create(tk, "exploding", title=SCRIPT)
    tk.run_until_idle()

    messages, ended = Changes(after=0).read(tk.store, run_id, tk.clock.now())

    assert ended
    datas = [json.loads(m.split("data: ", 1)[1]) for m in messages]
    run = next(d for d in datas if "tokens" in d)
    assert run["error"].endswith(f"cannot read {SCRIPT}")


def test_the_browser_script_sets_text_never_markup() -> None:
    script = (Path(__file__).parents[2] / "adapters/ui/static/live.js").read_text()

    assert "textContent" in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


def test_with_a_token_a_request_without_it_gets_401(client: Client) -> None:
    web = client(token=TOKEN)

    refused = web.get("/")
    wrong = web.get("/", headers={"Authorization": "Bearer not-the-token-at-all"})

    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert refused.headers["www-authenticate"] == "Bearer"
    assert web.get("/static/live.js").status_code == 401


def test_a_bearer_token_is_accepted(client: Client) -> None:
    response = client(token=TOKEN).get("/", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert "set-cookie" not in response.headers


def test_the_token_in_a_url_once_sets_an_httponly_strict_cookie_for_later_requests(
    client: Client,
) -> None:
    web = client(token=TOKEN)

    first = web.get(f"/?token={TOKEN}")
    later = web.get("/outbox")  # the TestClient sends the cookie back, as a browser would

    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert later.status_code == 200
    assert web.get("/?token=wrong-token-wrong-token").status_code == 200  # the cookie still counts
    web.cookies.clear()
    assert web.get("/?token=wrong-token-wrong-token").status_code == 401


def test_a_non_loopback_address_needs_a_token() -> None:
    check_binding("127.0.0.1", None)
    check_binding("::1", None)
    check_binding("localhost", None)
    check_binding("0.0.0.0", TOKEN)
    with pytest.raises(ValueError, match=r"host '0\.0\.0\.0' is not a loopback address.*--token"):
        check_binding("0.0.0.0", None)
    with pytest.raises(ValueError, match="token: expected at least 16 characters, got 5"):
        check_binding("0.0.0.0", "short")
    with pytest.raises(ValueError, match=r"token: expected letters.*\[' ', ';'\]"):
        check_binding("127.0.0.1", "a token; with spaces")


def test_wfk_ui_refuses_to_start_on_another_address_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WFK_UI_TOKEN", raising=False)
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    assert main(["migrate", "--store", url]) == 0
    capsys.readouterr()

    code = main(["ui", "--store", url, "--host", "0.0.0.0"])

    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("wfk: host '0.0.0.0' is not a loopback address")
    assert "--token" in error


def test_wfk_ui_actions_need_the_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WFK_APP", raising=False)
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    assert main(["migrate", "--store", url]) == 0

    assert main(["ui", "--store", url, "--allow-actions"]) == 2
    assert "this command needs the workflows: pass --app" in capsys.readouterr().err


def test_only_the_allowed_host_names_are_served(client: Client) -> None:
    web = client(allowed_hosts=["127.0.0.1:8787"])

    assert web.get("/", headers={"Host": "127.0.0.1:8787"}).status_code == 200
    refused = web.get("/", headers={"Host": "attacker.example:8787"})
    assert refused.status_code == 400
    assert "unknown host" in refused.text


def test_every_response_forbids_inline_scripts_framing_sniffing_and_foreign_referrers(
    client: Client,
) -> None:
    for response in (client().get("/"), client().get("/nowhere"), client(token=TOKEN).get("/")):
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
