"""Run a notebook the way JupyterLab's "Run All" does, to check (and time) the interactive path.

A Jupyter server is started on loopback, a session is opened for the notebook's path (so the server starts the named
kernel in the notebook's folder with ``JPY_SESSION_NAME`` set, exactly as JupyterLab asks it to), and the notebook's
code cells are sent one by one over the kernel's websocket, as the frontend sends them. Nothing is injected: the
parameters cell runs as written, which is the point — it must hold the interactive (``mini``) study. papermill and
nbclient talk to a kernel they start themselves, so neither exercises this path.

``synscale labrun notebooks/05_ood.ipynb`` prints the wall time and peak memory of the kernel.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synscale.runtime.paths import ROOT

#: what the last cell sent to the kernel prints: its peak resident memory (MB)
_PEAK = "import resource as _r; print('SYNSCALE_PEAK', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024)"


class CellError(RuntimeError):
    """A cell raised in the kernel; the message names the cell and the error."""


@dataclass
class LabRun:
    notebook: str
    cells: int
    wall_s: float
    peak_rss_mb: float
    stdout: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, root: Path, env: dict[str, str]):
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.close()
                    raise RuntimeError(f"the Jupyter server did not start: {self.proc.stderr.read()[-2000:]}") from None
                time.sleep(0.3)

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
        return json.loads(data) if data else None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _message(session: str, code: str) -> dict[str, Any]:
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "synscale", "session": session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}


def _execute(ws, session: str, code: str, timeout: float) -> tuple[str, dict | None]:
    """Send one cell; return what it printed on stdout and its error (``None`` when it succeeded). Done when both
    the shell's ``execute_reply`` and iopub's ``idle`` status have come: the channels are not ordered with each
    other, and under load a cell's last output can arrive after its reply."""
    msg = _message(session, code)
    ws.send(json.dumps(msg))
    out, error, deadline, replied, idle, status = [], None, time.time() + timeout, False, False, ""
    while not (replied and idle):
        ws.settimeout(max(1.0, deadline - time.time()))
        reply = json.loads(ws.recv())
        if reply.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
            continue
        kind, content = reply["msg_type"], reply["content"]
        if kind == "stream" and content.get("name") == "stdout":
            out.append(content["text"])
        elif kind == "error":
            error = content
        elif kind == "status" and content.get("execution_state") == "idle":
            idle = True
        elif kind == "execute_reply" and reply["channel"] == "shell":
            replied, status = True, content.get("status")
    return "".join(out), error if status == "error" else None


def run_all(notebook: str | Path, kernel: str = "synscale", env: dict[str, str] | None = None,
            timeout: float = 7200) -> LabRun:
    """Run every code cell of ``notebook`` in order through a Jupyter server's kernel, as JupyterLab's Run All does;
    raise :class:`CellError` at the first cell that fails. ``env`` is the server's (and so the kernel's) environment."""
    import websocket

    notebook = Path(notebook).resolve()
    cells = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"])
             for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    root = ROOT if notebook.is_relative_to(ROOT) else notebook.parent
    server = _Server(root, {**os.environ, **(env or {})})
    try:
        sess = server.api("POST", "/api/sessions", {"path": str(notebook.relative_to(root)), "type": "notebook",
                                                    "name": notebook.name, "kernel": {"name": kernel}})
        kid, session = sess["kernel"]["id"], uuid.uuid4().hex
        ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/api/kernels/{kid}/channels"
                                         f"?session_id={session}", header=[f"Authorization: token {server.token}"],
                                         timeout=60)
        t0, printed = time.perf_counter(), []
        try:
            for i, code in enumerate(cells):
                out, err = _execute(ws, session, code, timeout)
                printed.append(out)
                if err is not None:
                    raise CellError(f"{notebook.name}: code cell {i + 1} of {len(cells)} raised "
                                    f"{err.get('ename')}: {err.get('evalue')}")
            wall = time.perf_counter() - t0
            out, _ = _execute(ws, session, _PEAK, 60)
        finally:
            ws.close()
            server.api("DELETE", f"/api/sessions/{sess['id']}")
        peak = float(out.split("SYNSCALE_PEAK", 1)[1])
        return LabRun(str(notebook), len(cells), wall, peak, "".join(printed))
    finally:
        server.close()


def main(argv: list[str] | None = None, prog: str = "synscale labrun") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--kernel", default="synscale")
    args = ap.parse_args(argv)
    for nb in args.notebooks:
        r = run_all(nb, args.kernel)
        print(f"{nb.stem}: {r.cells} cells, {r.wall_s / 60:.1f} min, kernel peak {r.peak_rss_mb:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
