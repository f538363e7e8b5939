"""A test tool: headless Chromium (Debian's `chromium` package) driven over the DevTools
protocol, behind a small HTTP API on loopback for the Rust tests. It is not a browser of its
own: Chromium loads, lays out, refreshes and submits every page; this only tells it where to
go, reads what it shows, presses the mouse, and saves screenshots.

    POST /open        {"url", "width", "height"}   load a page at that window size
    POST /eval        {"js"}                       -> {"value"}: an expression on the page
    POST /click       {"selector"}                 a mouse press at the element's centre,
                                                   then waits for the page it loads
    POST /screenshot  {"path"}                     the whole page as PNG

Prints its port on the first line of output; stops Chromium when it ends.
Usage: browser.py [--chromium PATH]
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import websocket  # websocket-client


def die_with_parent():
    """In the child: Linux kills it when this tool dies, even by SIGKILL (as the tests stop it)."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Chromium:
    """One headless Chromium with one tab, spoken to over its DevTools websocket."""

    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="vm-chromium-")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # the test scripts may run as root
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"chromium ({binary}) did not start its DevTools port")
            time.sleep(0.1)
        port = int(open(port_file).read().split("\n")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], suppress_origin=True, timeout=60
        )
        self.next_id = 0
        self.events = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg["method"])

    def wait_load(self, timeout=30):
        """Until the page that is loading has fired its load event."""
        deadline = time.time() + timeout
        while "Page.loadEventFired" not in self.events:
            if time.time() > deadline:
                raise RuntimeError("the page did not finish loading")
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if "method" in msg:
                self.events.append(msg["method"])
        self.ws.settimeout(60)
        self.events.clear()

    def open(self, url, width, height):
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 720,
        )
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_load()

    def eval(self, js):
        # The page may be reloading itself (a running job's page does): try again shortly.
        last = None
        for _ in range(50):
            try:
                r = self.call("Runtime.evaluate", expression=js, returnByValue=True)
            except RuntimeError as e:
                last = e
                time.sleep(0.1)
                continue
            if "exceptionDetails" in r:
                last = r["exceptionDetails"].get("exception", {}).get("description")
                time.sleep(0.1)
                continue
            return r["result"].get("value")
        raise RuntimeError(f"cannot evaluate {js!r}: {last}")

    def click(self, selector):
        box = self.eval(
            "(() => { const e = document.querySelector(%s); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()" % json.dumps(selector)
        )
        if box is None:
            raise RuntimeError(f"nothing on the page matches {selector}")
        self.events.clear()
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=box["x"], y=box["y"])
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )
        self.wait_load()

    def screenshot(self, path):
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", default=os.environ.get("VECMIGRATE_TEST_CHROMIUM", "chromium"))
    args = parser.parse_args()
    browser = Chromium(args.chromium)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or "{}")
            try:
                if self.path == "/open":
                    browser.open(body["url"], body.get("width", 1280), body.get("height", 900))
                    answer = {}
                elif self.path == "/eval":
                    answer = {"value": browser.eval(body["js"])}
                elif self.path == "/click":
                    browser.click(body["selector"])
                    answer = {}
                elif self.path == "/screenshot":
                    browser.screenshot(body["path"])
                    answer = {}
                else:
                    self.send_error(404)
                    return
                code = 200
            except Exception as e:  # the test reads the reason
                answer, code = {"error": str(e)}, 500
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        browser.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
