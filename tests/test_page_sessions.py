"""A page session's life (issue 23, item 6): Stop reaches a run still waiting in the queue, and idle sessions lose
their temp files.

Two runs of one page session with room for one at a time: the first waits at its first step, the second waits in
the queue. The page's Stop (its own unqueued endpoint, as the browser calls it) must end both; the second, once its
turn comes, ends before any edit, as stopped by the person.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from helpers import GatedEditor, register, scene_file, serve, upload

from thinkedit.config import Settings
from thinkedit.ui import session as sessions

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

TRAJECTORY = 8  # /edit's outputs: the trajectory record is the ninth


def stop_index(demo, which: str) -> int:
    """The fn index of the page's Stop for `which` (a private endpoint: the page calls it by index)."""
    for index, block_fn in demo.fns.items():
        fn = getattr(block_fn, "fn", None)
        if getattr(fn, "func", None) is sessions.stop and fn.keywords == {"which": which}:
            return index
    raise AssertionError(f"no Stop for {which}")


def queued(demo) -> int:
    return sum(len(queue.queue) for queue in demo._queue.event_queue_per_concurrency_id.values())


def test_stop_pressed_while_a_run_waits_in_the_queue_stops_it_before_it_edits(tmp_path, monkeypatch):
    GatedEditor.reset()
    gated = register(monkeypatch, "editor", "gated", "GatedEditor")
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", ui_concurrency=1))
    try:
        url = url.rstrip("/")
        client = Client(url, verbose=False)
        image = upload(url, scene_file(tmp_path))
        first = client.submit(image, "make it brighter", editor=gated, max_turns=1, api_name="/edit")
        assert GatedEditor.entered.wait(30), "the first run did not start"
        second = client.submit(image, "make it brighter", editor=gated, max_turns=1, api_name="/edit")
        while not queued(demo):  # the second run is in the queue behind the first
            assert not second.done(), second.result()
            GatedEditor.entered.wait(0.05)
        body = {"data": [None], "fn_index": stop_index(demo, "studio"), "session_hash": client.session_hash}
        assert httpx.post(f"{url}/gradio_api/run/predict", json=body, timeout=30).status_code == 200
        GatedEditor.gate.set()
        records = [first.result()[TRAJECTORY], second.result()[TRAJECTORY]]
    finally:
        demo.close()
    assert [record["stop_reason"] for record in records] == ["cancelled", "cancelled"]
    assert records[1]["turns"] == [] and GatedEditor.calls == 1, "the queued run never edited"


def test_stop_pressed_before_a_run_is_clicked_does_not_stop_it(tmp_path):
    session = sessions.Session()
    sessions.stop(session, "studio")
    later = session.stopped_at["studio"] + 1.0
    assert not sessions.stopped_while_queued(session, "studio", later)
    assert sessions.stopped_while_queued(session, "studio", later - 2.0)
    assert not sessions.stopped_while_queued(session, "compare", later - 2.0)
    assert not sessions.stopped_while_queued(session, "studio", None), "a call from Python: not known, not stopped"


def test_an_api_callers_idle_session_loses_its_temp_files_and_gets_them_back(tmp_path, monkeypatch):
    """gradio_client sessions have no tab to close, so Gradio never drops them: idle ones are swept by ours."""
    demo, url = serve(Settings(runs_dir=tmp_path / "runs"))
    try:
        url = url.rstrip("/")
        client = Client(url, verbose=False)
        before = set(sessions._SESSIONS)
        client.predict(upload(url, scene_file(tmp_path)), "make it brighter", max_turns=1, api_name="/edit")
        (mine,) = [session for session in sessions._SESSIONS if session not in before and session.runs]
        folder = Path(mine.folder)
        assert folder.is_dir() and any(folder.rglob("*.png"))
        sessions.sweep_idle(mine.last_used + sessions.SESSION_IDLE_S / 2)
        assert folder.is_dir(), "a session used within the hour keeps its files"
        sessions.sweep_idle(mine.last_used + sessions.SESSION_IDLE_S + 1)
        assert not folder.exists(), "an idle API session's temp folder is removed"
        gallery = client.predict(api_name="/history")  # it comes back: History is whole again
        assert len(gallery) == 1 and folder.is_dir()
        assert Path(mine.history[mine.runs[0]][0]).is_file()
    finally:
        demo.close()
