"""Secrets and the public mode of the web app.

Planted secrets (random, unique) must never reach the page's /config, the API info, the server's log,
error messages or saved runs — even when a server echoes the key back in its error body. In --public
mode a caller cannot point the app at its own URLs, uploads are bounded, the file route serves the
assets only, and model text comes back as text.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import (
    EVIL,
    FakeServer,
    call_edit,
    chat_chunks,
    free_port,
    in_order,
    json_reply,
    register,
    run_edit,
    scene_file,
    serve,
    sse_reply,
    upload,
    wait_until_serving,
)

from thinkedit.config import Settings

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLANTED = {
    "THINKEDIT_THINKER_API_KEY": f"sk-planted-{secrets.token_hex(12)}",
    "OPENAI_API_KEY": f"sk-openai-{secrets.token_hex(12)}",
    "HF_TOKEN": f"hf_planted{secrets.token_hex(12)}",
}


def echo_key(seen) -> dict:
    """An error body that quotes the request's Authorization header back, as careless servers do."""
    return {"error": {"message": f"Incorrect API key provided: {seen.headers.get('authorization')}"}}


def assert_no_secret(text: str, where: str) -> None:
    for name, value in PLANTED.items():
        assert value not in text and value[-12:] not in text, f"{name} leaked into {where}"


@pytest.fixture(scope="module")
def chat_server():
    def answer(seen):
        status = 500 if len(server.seen) % 2 else 401  # a 500 that is retried (and logged), then a 401
        return json_reply(echo_key(seen), status)

    server = FakeServer({("POST", "/v1/chat/completions"): answer})
    yield server
    server.close()


@pytest.fixture(scope="module")
def app_process(tmp_path_factory, chat_server):
    """`python app.py` in a subprocess with the secrets in its environment and its output captured."""
    folder = tmp_path_factory.mktemp("secrets")
    port = free_port()
    env = {
        **os.environ,
        **PLANTED,
        "THINKEDIT_PORT": str(port),
        "THINKEDIT_RUNS_DIR": str(folder / "runs"),
        "THINKEDIT_THINKER": "openai",
        "THINKEDIT_THINKER_URL": f"{chat_server.url}/v1",
        "THINKEDIT_THINKER_MODEL": "served",
        "THINKEDIT_REQUEST_RETRIES": "1",
        "THINKEDIT_RETRY_BACKOFF": "0.05",
        "THINKEDIT_CONNECT_TIMEOUT": "2",
    }
    log = folder / "app.log"
    with log.open("wb") as out:
        app = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, app, 60, lambda: log.read_text(errors="replace"))
        yield url, folder, log, app
    finally:  # never leave the app running, even when it did not start in time
        app.terminate()
        app.wait(timeout=20)


def test_a_url_the_caller_names_gets_no_server_key_and_its_answers_are_not_quoted(app_process, chat_server, tmp_path):
    """Outside public mode a caller may name their own thinker URL: the server's key never goes there (their own
    key, typed in the password box, does), and what that server says is not shown back (it may be anything on the
    server's network). The URL the server configured, typed into the box as it is, still gets the server's key."""
    url, folder, log, _ = app_process
    client = Client(url, verbose=False)
    photo = handle_file(scene_file(tmp_path))
    answer = sse_reply(chat_chunks(['<score>{"semantic": 9, "quality": 9}</score><answer>ok</answer>']))
    secret_page = json_reply({"error": "internal page: db password is hunter2"}, 500)
    with FakeServer({("POST", "/v1/chat/completions"): in_order(answer, answer, secret_page)}) as stranger:
        stranger_url = f"{stranger.url}/v1"
        keyless, _ = run_edit(
            client, photo, "make it brighter", max_turns=1, thinker="openai", thinker_url=stranger_url
        )
        own, toasts = run_edit(
            client,
            photo,
            "make it brighter",
            max_turns=1,
            thinker="openai",
            thinker_url=stranger_url,
            thinker_key="caller-own-key-123",
        )
        failed, _ = run_edit(client, photo, "make it brighter", max_turns=1, thinker="openai", thinker_url=stranger_url)
    sent = [seen.headers.get("authorization") for seen in stranger.seen]
    assert sent[:2] == ["Bearer EMPTY", "Bearer caller-own-key-123"], sent
    assert keyless["trajectory"]["error"] is None and own["trajectory"]["error"] is None
    message = failed["trajectory"]["error"]
    assert stranger.url.split("//")[1] in message and "HTTP 500" in message and "hunter2" not in message
    shown = "\n".join([str(own), *(text for text, _ in toasts)])
    saved = "".join(p.read_bytes().decode("latin-1") for p in (folder / "runs").rglob("*") if p.is_file())
    for where, text in (("the page", shown), ("the runs", saved), ("the log", log.read_text(errors="replace"))):
        assert_no_secret(text, where)
        assert "caller-own-key-123" not in text, f"the caller's key came back in {where}"

    before = len(chat_server.seen)
    run_edit(client, photo, "make it brighter", max_turns=1, thinker="openai", thinker_url=f"{chat_server.url}/v1/")
    keyed = [seen.headers.get("authorization") for seen in chat_server.seen[before:]]
    assert f"Bearer {PLANTED['THINKEDIT_THINKER_API_KEY']}" in keyed, "the server's own URL keeps the server's key"


def test_planted_secrets_stay_out_of_the_page_api_errors_runs_and_logs(app_process, chat_server, tmp_path):
    url, folder, log, app = app_process
    client = Client(url, verbose=False)
    photo = handle_file(scene_file(tmp_path))
    closed = f"http://127.0.0.1:{free_port()}"
    said = []
    attempts = [
        dict(thinker="openai"),  # the configured server: 500 then 401, both quoting the key
        dict(thinker="openai", thinker_url=f"{closed}/v1"),  # connection refused
        dict(editor="http", editor_url=closed),
        dict(editor="hf-inference", thinker="hf-inference"),  # HF_TOKEN is set; offline mode refuses
    ]
    for options in attempts:
        try:
            final, toasts = run_edit(client, photo, "make it brighter", max_turns=1, **options)
        except Exception as exc:  # noqa: BLE001 - a refusal is an answer too; its text is checked
            said.append(str(exc))
            continue
        said += [final["status"], str(final["trajectory"]), *(text for text, _ in toasts)]
    keyed = [
        s
        for s in chat_server.seen
        if s.headers.get("authorization") == f"Bearer {PLANTED['THINKEDIT_THINKER_API_KEY']}"
    ]
    assert len(keyed) >= 2, "the key really went out (and came back in the error bodies)"
    assert any("Incorrect API key provided: Bearer ***" in text for text in said), "the echo came back, redacted"
    assert_no_secret("\n".join(said), "messages returned to the client")

    for path in ("/", "/config", "/gradio_api/info", "/gradio_api/openapi.json"):
        response = httpx.get(url + path)
        assert_no_secret(response.text, path)
    assert httpx.get(f"{url}/config").status_code == 200 and "edit" in httpx.get(f"{url}/gradio_api/info").text

    saved = [p for p in (folder / "runs").rglob("*") if p.is_file()]
    assert saved, "the failed runs were saved"
    for path in saved:
        assert_no_secret(path.read_bytes().decode("latin-1"), str(path))

    app.terminate()
    app.wait(timeout=20)
    output = log.read_text(errors="replace")
    assert "127.0.0.1" in output, "the log was captured"
    assert_no_secret(output, "the server's log")


# -- public mode -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    runs = tmp_path_factory.mktemp("public-runs")
    demo, url = serve(Settings(runs_dir=runs, public=True))
    yield url.rstrip("/"), runs
    demo.close()


def test_public_mode_takes_no_urls_from_the_caller(public_app, tmp_path):
    url, _ = public_app
    parameters = httpx.get(f"{url}/gradio_api/info").json()["named_endpoints"]["/edit"]["parameters"]
    assert {p["parameter_name"] for p in parameters}.isdisjoint(
        {"editor_model", "editor_url", "thinker_model", "thinker_url"}
    )
    with FakeServer({("GET", "/health"): lambda s: json_reply({"status": "ok"})}) as target:
        image = upload(url, scene_file(tmp_path))
        basics = [image, "make it brighter", "http", "classic", 1, 8, "none", 0, False, None, None]
        # every slot filled, the model/URL ones (server-side state in public mode) with the caller's server
        answer = call_edit(
            url,
            basics
            + ["evil/model", target.url, "evil/model", f"{target.url}/v1", "k", "k", "fast", "same", False]
            + [None] * 6,  # no mask, nothing painted, no early stop, and the session
        )
        # the caller's URL was not taken: the server has none for `http`, said in a visitor's terms (no flag to set)
        assert "cannot run here" in answer and "no model server set up for it on this server" in answer
        assert target.url not in answer and "--editor-url" not in answer and "THINKEDIT_" not in answer
        assert target.seen == [], "the public app must never call a URL a caller supplied"

        private, private_url = serve(Settings(runs_dir=tmp_path / "runs"))  # the control: outside public mode it does
        try:
            private_url = private_url.rstrip("/")
            call_edit(
                private_url,
                [
                    upload(private_url, scene_file(tmp_path)),
                    *basics[1:],
                    None,
                    target.url,
                    None,
                    None,
                    None,
                    None,
                    "default",
                    "same",
                    False,
                    *[None, None, None],  # no early stop
                    None,
                    None,
                    None,
                ],
            )
        finally:
            private.close()
        assert target.seen, "outside public mode the editor URL box is honoured"


def test_oversize_uploads_are_refused(public_app, tmp_path):
    url, _ = public_app
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(51 * 1024 * 1024))
    with big.open("rb") as file:
        response = httpx.post(f"{url}/gradio_api/upload", files={"files": ("big.png", file, "image/png")}, timeout=60)
    assert response.status_code == 413 and "maximum allowed size" in response.text


def get_raw(url: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (httpx would resolve ../ itself)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_file_route_serves_the_assets_and_nothing_else(public_app, tmp_path):
    from thinkedit.ui.view import SCRATCH

    url, runs = public_app
    final, _ = run_edit(Client(url, verbose=False), handle_file(scene_file(tmp_path)), "make it brighter", max_turns=1)
    run_dir = Path(final["trajectory"]["run_dir"])
    display_copy = next(Path(SCRATCH.name).rglob("turn_01.png"))
    status, body = get_raw(url, f"/gradio_api/file={ROOT}/assets/examples.json")
    assert status == 200 and b"instruction" in body, "the control: assets are served"

    forbidden = [
        "/etc/passwd",
        "/proc/self/environ",
        f"{ROOT}/thinkedit/config.py",
        "thinkedit/config.py",
        "app.py",
        f"{run_dir}/source.png",
        f"{run_dir}/trajectory.json",
        str(display_copy),
        "assets/../thinkedit/config.py",
        f"{ROOT}/assets/../app.py",
        "../../../../etc/passwd",
        "assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        f"{ROOT}/assets/%2e%2e/app.py",
        "assets/../../../../proc/self/environ",
    ]
    for path in forbidden:
        status, body = get_raw(url, f"/gradio_api/file={path}")
        assert status in (403, 404), f"{path} was served ({status}): {body[:80]!r}"
        assert b"root:" not in body and b"MAX_INSTRUCTION" not in body and b"schema_version" not in body


def test_model_text_comes_back_as_text_and_error_toasts_escaped(tmp_path, monkeypatch):
    """A real OpenAI-compatible stream (a fake server) that writes markup, on a public app configured with it."""
    content = [
        f"<think>Looks fine {EVIL}</think>",
        '<score>{"semantic": 4, "quality": 6}</score>',
        f"<answer>make it brighter {EVIL}</answer>",
    ]
    stream = in_order(sse_reply(chat_chunks(content)))
    with FakeServer({("POST", "/v1/chat/completions"): stream}) as server:
        register(monkeypatch, "thinker", "refuser", "FaultThinker", output="", raise_on_call=1, raise_message=EVIL)
        demo, url = serve(
            Settings(
                runs_dir=tmp_path / "runs",
                public=True,
                thinker_url=f"{server.url}/v1",
                thinker_model="served",
                request_retries=0,
            )
        )
        try:
            client = Client(url, verbose=False)
            photo = handle_file(scene_file(tmp_path))
            final, _ = run_edit(client, photo, "make it brighter", thinker="openai", max_turns=1)
            assert EVIL in final["reasoning"] and EVIL in final["refined"], "model text is returned as the text itself"
            final, toasts = run_edit(client, photo, "make it brighter", thinker="refuser", max_turns=1)
        finally:
            demo.close()
    assert EVIL in final["status"], "the status line is a text box: the text itself"
    shown = [text for text, _ in toasts if "window.__pwned" in text]
    # toasts are rendered as HTML: no "<" may reach them; quotes stay as written (they cannot open a tag)
    assert shown and all("<" not in text and html.escape(EVIL, quote=False) in text for text in shown), toasts


def test_the_web_app_closes_a_connection_that_never_finishes_its_headers(public_app):
    """Slow-loris: half a request header, then a byte at a time; the server closes both after its header timeout
    (uvicorn's keep-alive timeout, 5 s in Gradio's server), and goes on serving."""
    from helpers import closed_by_server, raw_request

    url, _ = public_app
    half = raw_request(url, b"GET /config HTTP/1.1\r\nHost: test\r\n")
    trickling = raw_request(url, b"GET /config HTTP/1.1\r\nX-Slow: ")
    stop = threading.Event()

    def trickle():  # a byte every 0.2 s: each one would restart uvicorn's keep-alive timer
        with contextlib.suppress(OSError):
            while not stop.wait(0.2):
                trickling.sendall(b"a")

    threading.Thread(target=trickle, daemon=True).start()
    try:
        assert closed_by_server(half) and closed_by_server(trickling)
    finally:
        stop.set()
        half.close()
        trickling.close()
    assert httpx.get(f"{url}/config").status_code == 200
