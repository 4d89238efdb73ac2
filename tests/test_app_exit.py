"""`python app.py` removes its temp files when it is stopped, by SIGTERM (service managers) as by Ctrl-C, and a
second signal while it closes does not break that off."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from helpers import free_port

PROJECT = Path(__file__).resolve().parent.parent


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_app_leaves_no_temp_files(tmp_path, scene, stop):
    temp, gradio_temp, port = tmp_path / "tmp", tmp_path / "gradio", free_port()
    temp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "GRADIO_TEMP_DIR": str(gradio_temp),
        "THINKEDIT_PORT": str(port),
        "THINKEDIT_RUNS_DIR": str(tmp_path / "runs"),
    }
    app = subprocess.Popen(
        [sys.executable, str(PROJECT / "app.py")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        while True:  # started when the port answers
            assert app.poll() is None, app.stderr.read()
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        scene.save(tmp_path / "scene.png")
        Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            handle_file(str(tmp_path / "scene.png")), "make it brighter", api_name="/edit", max_turns=2
        )
        assert files_under(temp) and files_under(gradio_temp), "the run left display copies and Gradio's copies"
        app.send_signal(stop)
        app.send_signal(stop)  # twice, as an impatient Ctrl-C or `timeout` beside a service manager sends it
        assert app.wait(60) == 0
        assert "Traceback" not in app.stderr.read()
    finally:
        if app.poll() is None:
            app.kill()
    assert files_under(temp) == [] and files_under(gradio_temp) == []
    assert (tmp_path / "runs").is_dir() and files_under(tmp_path / "runs"), "the runs folder is data: it stays"


@pytest.mark.parametrize(
    ("variable", "value", "sentence"),
    [
        ("THINKEDIT_SPEED", "turbo", "error: Unknown speed 'turbo'; use default or fast."),
        ("THINKEDIT_MAX_TURNS", "abc", "error: THINKEDIT_MAX_TURNS must be a whole number, not 'abc'."),
    ],
)
def test_a_bad_setting_is_one_sentence_and_exit_2(variable, value, sentence):
    env = {**os.environ, variable: value}
    done = subprocess.run([sys.executable, str(PROJECT / "app.py")], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stderr.strip()) == (2, sentence)
