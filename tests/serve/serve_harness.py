"""Shared pieces of the `wick serve` end-to-end tests: the command line, a server process on a
free port, raw HTTP calls, and /metrics parsing. Exit code 77 tells ctest a test was skipped."""

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

SKIPPED = 77
OPENAI_VERSION = "3.57.0"  # the version scripts/install-deps.sh installs


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--wick", required=True, help="the wick binary")
    p.add_argument("--models", required=True, help="folder with SmolLM2-135M-Instruct.Q4_1.gguf and all-MiniLM-L6-v2/")
    p.add_argument("--data", required=True, help="the repository's data/demo folder (adapter training data)")
    p.add_argument("--golden", required=True, help="tests/data/models/smollm2_greedy_golden.json")
    args, rest = p.parse_known_args()
    sys.argv[1:] = rest  # what is left goes to unittest
    return args


def require_models(args):
    smol = os.path.join(args.models, "SmolLM2-135M-Instruct.Q4_1.gguf")
    minilm = os.path.join(args.models, "all-MiniLM-L6-v2")
    missing = [p for p in (smol, minilm) if not os.path.exists(p)]
    if missing:
        print("SKIPPED: missing " + ", ".join(missing) + " (run scripts/fetch-models.sh models)")
        sys.exit(SKIPPED)
    try:
        import openai  # noqa: F401
    except ImportError:
        print(f"error: the openai package is missing: python3 -m pip install openai=={OPENAI_VERSION} "
              "(scripts/install-deps.sh does)")
        sys.exit(1)
    return smol, minilm


class WickServer:
    """A `wick serve` process on a free port of 127.0.0.1."""

    def __init__(self, wick, *args, startup_timeout=120):
        self.process = subprocess.Popen([wick, "serve", "--device", "cpu", "--port", "0", *args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.clients = {}
        self.port = None
        listening = threading.Event()

        def read_log():
            for line in self.process.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    listening.set()
            listening.set()

        self.reader = threading.Thread(target=read_log, daemon=True)
        self.reader.start()
        if not listening.wait(startup_timeout) or self.port is None:
            self.process.kill()
            raise RuntimeError("wick serve did not start:\n" + "".join(self.log))
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def client(self, api_key="unused"):
        """An openai client of this server (one per key, so connections are reused)."""
        import openai
        if api_key not in self.clients:
            self.clients[api_key] = openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=120)
        return self.clients[api_key]

    def request(self, method, path, body=None, headers=None, raw=None):
        """(status, parsed JSON or text) of one request; `raw` sends bytes as they are."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        conn.close()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    def metrics(self, headers=None):
        status, text = self.request("GET", "/metrics", headers=headers)
        assert status == 200, (status, text)
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def wait_idle(self, timeout=30):
        """/metrics once nothing runs, waits or holds KV blocks (fails after `timeout` s)."""
        deadline = time.time() + timeout
        while True:
            m = self.metrics()
            idle = (m["wick_running_batch_size"] == 0 and m["wick_queue_length"] == 0 and m["wick_kv_blocks_in_use"] == 0
                    and m["wick_requests_finished_total"] == m["wick_requests_admitted_total"])
            if idle or time.time() > deadline:
                return m, idle
            time.sleep(0.05)

    def resident_bytes(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends `sig` and returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.reader.join(10)
            self.process.stderr.close()
            for client in self.clients.values():
                client.close()


def run_wick(wick, *args, stdin=""):
    r = subprocess.run([wick, *args], input=stdin, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"wick {' '.join(args)} failed: {r.stderr}")
    return r.stdout
