#!/usr/bin/env python3
"""A bounded load test of `wick serve` (issue 15, acceptance 3): 64 concurrent streaming clients make
a fixed number of requests each, a quarter of them hanging up mid-stream. Every completed response
must be a well-formed stream ending in [DONE] with its usage, the server must survive, /metrics
must show the KV blocks, the queue and the running batch back at zero, and the server's resident
memory must come back within 10% of its level before the test.

  python3 load_test.py --wick build/bin/wick --models models --data data/demo \
      --golden tests/data/models/smollm2_greedy_golden.json

LOAD_EXTRA in the environment adds arguments to `wick serve` (e.g. LOAD_EXTRA=--expand-weights).
"""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import WickServer, parse_args, require_models  # noqa: E402

ARGS = parse_args()
EXTRA = os.environ.get("LOAD_EXTRA", "").split()
SMOL, _ = require_models(ARGS)

CLIENTS = 64
REQUESTS_PER_CLIENT = 2
MAX_TOKENS = 4
WARM_UP_TOKENS = 2
DEADLINE_S = 240  # every socket gives up after this; the test fails rather than hangs
PROMPTS = ["The quick brown fox", "Once upon a time there was", "List three fruits:", "In 1969, astronauts",
           "The recipe needs", "My favourite programming language is", "A haiku about rain:", "Dear diary, today"]


def http_stream(port, prompt, max_tokens, hang_up_after=None):
    """Streams one completion over a raw socket. Returns the SSE payloads, or None when it hung up
    after `hang_up_after` events on purpose."""
    body = json.dumps({"model": "SmolLM2-135M-Instruct.Q4_1", "prompt": prompt, "max_tokens": max_tokens,
                       "stream": True, "temperature": 0.7, "seed": 3, "ignore_eos": True}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    try:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        data = b""
        while True:
            if hang_up_after is not None and data.count(b"data: ") >= hang_up_after:
                return None
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n")[0]
    if b" 200 " not in status_line:
        raise AssertionError(f"status {status_line!r}: {payload[:200]!r}")
    # Chunked transfer encoding: size line, bytes, CRLF.
    body, rest = b"", payload
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2:]
    events = [e for e in body.decode().split("\n\n") if e]
    return [e[len("data: "):] for e in events]


def check_well_formed(events, max_tokens):
    assert events and events[-1] == "[DONE]", events[-3:]
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length", chunks[-1]
    assert chunks[-1]["usage"]["completion_tokens"] == max_tokens, chunks[-1]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def main():
    server = WickServer(ARGS.wick, "--model", SMOL, "--ctx", "256", "--max-queue", "128", "--http-threads", "160", *EXTRA)
    failures, completed, hung_up = [], [0], [0]
    lock = threading.Lock()

    def client(i, rounds, hang_up, max_tokens):
        for r in range(rounds):
            try:
                events = http_stream(server.port, PROMPTS[(i + r) % len(PROMPTS)], max_tokens,
                                     hang_up_after=2 if hang_up else None)
                if events is None:
                    with lock:
                        hung_up[0] += 1
                    continue
                check_well_formed(events, max_tokens)
                with lock:
                    completed[0] += 1
            except Exception as e:  # noqa: BLE001 - collected and reported
                with lock:
                    failures.append(f"client {i} request {r}: {e!r}")

    def burst(rounds, hang_up_share, max_tokens):
        threads = [threading.Thread(target=client, args=(i, rounds, i < CLIENTS * hang_up_share, max_tokens))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE_S)
        return not any(t.is_alive() for t in threads)

    try:
        # Warm up with the same concurrency (allocator arenas, thread stacks), then measure.
        assert burst(1, 0, WARM_UP_TOKENS), "the warm-up did not finish"
        _, idle = server.wait_idle()
        assert idle and not failures, failures
        completed[0] = 0
        rss_before = server.resident_bytes()
        start = time.time()
        finished = burst(REQUESTS_PER_CLIENT, 0.25, MAX_TOKENS)
        elapsed = time.time() - start
        metrics, idle = server.wait_idle()
        rss_after = server.resident_bytes()
        alive = server.process.poll() is None
        print(f"{CLIENTS} clients x {REQUESTS_PER_CLIENT} requests in {elapsed:.1f} s: {completed[0]} completed, "
              f"{hung_up[0]} hung up, {len(failures)} failed; RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB; "
              f"KV blocks in use {metrics['wick_kv_blocks_in_use']:.0f}, queue {metrics['wick_queue_length']:.0f}")
        for f in failures[:10]:
            print("  " + f)
        ok = (finished and alive and idle and not failures
              and completed[0] == CLIENTS * 3 // 4 * REQUESTS_PER_CLIENT
              and hung_up[0] == CLIENTS // 4 * REQUESTS_PER_CLIENT
              and abs(rss_after - rss_before) <= 0.10 * rss_before)
    finally:
        code = server.stop()
    print(f"wick serve exited with {code}")
    passed = ok and code == 0
    print(f"{1 if passed else 0} passed, {0 if passed else 1} failed")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
