"""`make lab`, as the README says to run it: the server starts (as root too), serves the notebooks, runs a kernel
that imports course_lib, and Ctrl-C leaves no server or kernel behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from tornado.ioloop import IOLoop
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str, method: str = "GET", body: dict | None = None) -> dict | list:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def wait_for_server(base: str, token: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make lab exited with {process.returncode}:\n{log.read_text()}")
        try:
            get(f"{base}/api/status", token)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the server did not answer within {STARTUP_SECONDS} s")


async def run_in_kernel(ws_url: str, token: str, code: str) -> str:
    """Execute ``code`` in a kernel over the server's websocket; return what it printed."""
    connection = await websocket_connect(f"{ws_url}?token={token}")
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": uuid.uuid4().hex,
              "version": "5.3", "date": ""}
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False}
    await connection.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                                               "content": content, "channel": "shell", "buffers": []}))
    printed, deadline = [], time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        message = json.loads(await connection.read_message())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream":
            printed.append(message["content"]["text"])
        elif kind == "error":
            pytest.fail(f"the kernel raised {message['content']['ename']}: {message['content']['evalue']}")
        elif kind == "status" and message["content"]["execution_state"] == "idle":
            break
    connection.close()
    return "".join(printed)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_serves_the_notebooks_runs_a_kernel_and_stops_cleanly(tmp_path):
    venv_python = ROOT / ".venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.skip("make lab uses the project's .venv; run `make test` (which creates it) first")
    up_to_date = subprocess.run(["make", "-q", "install"], cwd=ROOT)
    assert up_to_date.returncode == 0, "the venv is installed, so make lab must not install again"

    port, token = free_port(), secrets.token_hex(16)
    lab_args = f"--no-browser --port={port} --ServerApp.port_retries=0 --ServerApp.token={token}"
    # The server's output goes to a file: a pipe that nobody reads fills up and blocks the server's shutdown.
    log = tmp_path / "make-lab.log"
    with log.open("w") as output:
        # Ctrl-C as in a terminal: a shell without job control starts background jobs (CI under `nohup ... &`,
        # say) with SIGINT ignored, and a Python that starts with SIGINT ignored never raises KeyboardInterrupt.
        process = subprocess.Popen(["make", "lab", f"LAB_ARGS={lab_args}"], cwd=ROOT, stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                   start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    base = f"http://127.0.0.1:{port}"
    kernel_pid = None
    try:
        wait_for_server(base, token, process, log)
        listing = get(f"{base}/api/contents", token)
        names = [item["name"] for item in listing["content"]]
        assert "00_welcome.ipynb" in names, f"the server's root should be notebooks/, it lists {names}"

        kernel = get(f"{base}/api/kernels", token, method="POST", body={"name": "python3"})
        ws_url = f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels"
        printed = IOLoop.current().run_sync(lambda: run_in_kernel(
            ws_url, token, "import os, course_lib; print(os.getpid(), course_lib.__file__)"))
        pid, path = printed.split()
        kernel_pid = int(pid)
        assert Path(path).resolve().is_relative_to(ROOT / "course_lib")
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to make and its children
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"make lab did not stop within 60 s of Ctrl-C; its output:\n{log.read_text()[-4000:]}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (group_alive(process.pid) or (kernel_pid and alive(kernel_pid))):
        time.sleep(0.5)
    assert not group_alive(process.pid), "a process of make lab survived Ctrl-C"
    assert kernel_pid is not None and not alive(kernel_pid), "the kernel survived Ctrl-C"
