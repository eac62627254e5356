#!/usr/bin/env python3
"""`wick serve` end to end, driven by the official openai client: chat (plain and streamed),
completions, embeddings (equal to `wick embed`'s vectors), the model list, adapters chosen by
`model` (a trained adapter changes the output as `wick generate --adapter` does, the base stays as
transformers generates it), adapters loaded and unloaded at run time, API keys, every bad input
with its status code, a client leaving mid-stream, and a graceful SIGTERM.

  python3 test_openai_api.py --wick build/bin/wick --models models --data data/demo \
      --golden tests/data/models/smollm2_greedy_golden.json [unittest args]
"""

import base64
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import WickServer, parse_args, require_models, run_wick  # noqa: E402

ARGS = parse_args()
SMOL, MINILM = require_models(ARGS)
import openai  # noqa: E402

BASE = "SmolLM2-135M-Instruct.Q4_1"
EMBEDDER = "all-MiniLM-L6-v2"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
CONTEXT = 256


def golden_case():
    """transformers' greedy continuation of the question (prompt ids, ids up to EOS)."""
    with open(ARGS.golden) as f:
        case = json.load(f)["cases"][0]
    assert case["prompt"] == QUESTION[0]["content"]
    ids = case["greedy_ids"]
    return case["prompt_ids"], ids[:ids.index(2)]


class Shared:
    work = None
    adapter = None
    server = None


def setUpModule():
    Shared.work = tempfile.mkdtemp(prefix="wick_serve_test_")
    Shared.adapter = os.path.join(Shared.work, "pirate")
    run_wick(ARGS.wick, "train", "--model", SMOL, "--data", os.path.join(ARGS.data, "pirate_train.jsonl"),
             "--out", Shared.adapter, "--steps", "6", "--batch-size", "2", "--lr", "3e-3", "--rank", "8",
             "--targets", "q_proj,v_proj", "--seed", "1", "--device", "cpu")
    Shared.server = WickServer(ARGS.wick, "--model", SMOL, "--embedding-model", MINILM, "--adapter",
                               "pirate=" + Shared.adapter, "--allow-adapter-loading", "--ctx", str(CONTEXT),
                               "--max-body-bytes", str(1 << 20))


def tearDownModule():
    if Shared.server:
        code = Shared.server.stop()
        if code != 0:
            print("".join(Shared.server.log))
        assert code == 0, f"wick serve exited with {code} after SIGTERM"
    shutil.rmtree(Shared.work, ignore_errors=True)


def chat(model=BASE, messages=QUESTION, **kwargs):
    kwargs.setdefault("max_tokens", 12)
    return Shared.server.client().chat.completions.create(model=model, messages=messages, **kwargs)


class Generation(unittest.TestCase):
    def test_chat_answers_as_transformers_greedy(self):
        prompt_ids, answer_ids = golden_case()
        want = json.loads(run_wick(ARGS.wick, "detokenize", "--tokenizer", SMOL, stdin=json.dumps(answer_ids) + "\n"))
        for extra in ({"temperature": 0}, {}):  # a GGUF has no generation_config: greedy by default
            r = chat(max_tokens=32, **extra)
            self.assertEqual(r.choices[0].message.content, want)
            self.assertEqual(r.choices[0].message.role, "assistant")
            self.assertEqual(r.choices[0].finish_reason, "stop")
            self.assertEqual(r.model, BASE)
            self.assertEqual(r.usage.prompt_tokens, len(prompt_ids))
            self.assertEqual(r.usage.completion_tokens, len(answer_ids))
            self.assertEqual(r.usage.total_tokens, len(prompt_ids) + len(answer_ids))

    def test_chat_streams_the_same_text(self):
        plain = chat(max_tokens=32, temperature=0)
        chunks = list(chat(max_tokens=32, temperature=0, stream=True, stream_options={"include_usage": True}))
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, plain.choices[0].message.content)
        self.assertEqual([c.choices[0].finish_reason for c in chunks if c.choices][-1], "stop")
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.completion_tokens, plain.usage.completion_tokens)
        # Without include_usage the usage rides on the last chunk.
        chunks = list(chat(max_tokens=5, temperature=0, stream=True))
        self.assertEqual(chunks[-1].choices[0].finish_reason, "length")
        self.assertEqual(chunks[-1].usage.completion_tokens, 5)

    def test_completions_equal_wick_generate(self):
        prompt = "The three primary colors are"
        want = json.loads(run_wick(ARGS.wick, "generate", "--model", SMOL, "--device", "cpu", "--prompt", prompt,
                                   "--max-tokens", "6", "--temperature", "0", "--json"))
        client = Shared.server.client()
        r = client.completions.create(model=BASE, prompt=prompt, max_tokens=6, temperature=0)
        self.assertEqual(r.choices[0].text, want["text"])
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertEqual(r.usage.completion_tokens, 6)
        ids = json.loads(run_wick(ARGS.wick, "tokenize", "--tokenizer", SMOL, "--add-special", stdin=json.dumps(prompt) + "\n"))
        self.assertEqual(r.usage.prompt_tokens, len(ids))
        by_ids = client.completions.create(model=BASE, prompt=ids, max_tokens=6, temperature=0)
        self.assertEqual(by_ids.choices[0].text, want["text"])
        streamed = "".join(c.choices[0].text for c in client.completions.create(
            model=BASE, prompt=prompt, max_tokens=6, temperature=0, stream=True) if c.choices)
        self.assertEqual(streamed, want["text"])
        two = client.completions.create(model=BASE, prompt=[prompt, "Paris is"], max_tokens=3, temperature=0)
        self.assertEqual([c.index for c in two.choices], [0, 1])
        self.assertEqual(two.choices[0].text, client.completions.create(
            model=BASE, prompt=prompt, max_tokens=3, temperature=0).choices[0].text)

    def test_stop_strings_cut_text_and_tokens(self):
        r = chat(max_tokens=32, temperature=0, stop=["Paris", "London"])
        self.assertEqual(r.choices[0].message.content, "The capital of France is ")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        # "The", " capital", " of", " France", " is", " Paris": the last one's space is in the text.
        self.assertEqual(r.usage.completion_tokens, 6)
        streamed = "".join(c.choices[0].delta.content or "" for c in chat(
            max_tokens=32, temperature=0, stop="Paris", stream=True) if c.choices)
        self.assertEqual(streamed, "The capital of France is ")

    def test_logprobs(self):
        r = chat(max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
        content = r.choices[0].logprobs.content
        self.assertEqual(len(content), r.usage.completion_tokens)
        self.assertEqual("".join(t.token for t in content), r.choices[0].message.content)
        for t in content:
            self.assertEqual(len(t.top_logprobs), 3)
            self.assertEqual(t.top_logprobs[0].token, t.token)  # greedy takes the most likely token
            self.assertAlmostEqual(t.top_logprobs[0].logprob, t.logprob, places=5)
            self.assertLessEqual(t.logprob, 0)
            self.assertGreaterEqual(t.top_logprobs[1].logprob, t.top_logprobs[2].logprob)
            self.assertEqual(bytes(t.bytes).decode(), t.token)
        c = Shared.server.client().completions.create(model=BASE, prompt="Paris is", max_tokens=4, temperature=0, logprobs=2)
        lp = c.choices[0].logprobs
        self.assertEqual(len(lp.tokens), 4)
        self.assertEqual("".join(lp.tokens), c.choices[0].text)
        self.assertEqual(lp.text_offset[0], 0)
        self.assertTrue(all(len(top) <= 2 for top in lp.top_logprobs))

    def test_seeded_sampling_repeats_and_n_gives_several_choices(self):
        kwargs = dict(max_tokens=8, temperature=1.0, seed=42, n=3)
        a, b = chat(**kwargs), chat(**kwargs)
        self.assertEqual(len(a.choices), 3)
        self.assertEqual([c.message.content for c in a.choices], [c.message.content for c in b.choices])
        self.assertGreater(len({c.message.content for c in a.choices}), 1)  # each choice draws its own tokens
        self.assertLessEqual(a.usage.completion_tokens, 3 * 8)

    def test_ignore_eos_runs_to_max_tokens(self):
        _, answer_ids = golden_case()
        r = chat(max_tokens=len(answer_ids) + 4, temperature=0, extra_body={"ignore_eos": True})
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertEqual(r.usage.completion_tokens, len(answer_ids) + 4)


class Embeddings(unittest.TestCase):
    def test_vectors_equal_wick_embed(self):
        texts = ["A man is eating food.", "", "Grüße aus Köln", "word " * 400]
        want = [json.loads(line) for line in run_wick(
            ARGS.wick, "embed", "--model", MINILM, "--device", "cpu",
            stdin="".join(json.dumps(t) + "\n" for t in texts if t)).splitlines()]
        client = Shared.server.client()
        for fmt in ("float", "base64"):
            r = client.embeddings.create(model=EMBEDDER, input=[t for t in texts if t], encoding_format=fmt)
            self.assertEqual(len(r.data), len(want))
            for got, ref in zip(r.data, want):
                vector = got.embedding
                if isinstance(vector, str):
                    raw = base64.b64decode(vector)
                    vector = struct.unpack(f"<{len(raw) // 4}f", raw)
                self.assertEqual(len(vector), 384)
                self.assertLess(max(abs(a - b) for a, b in zip(vector, ref)), 1e-5)
            self.assertGreater(r.usage.prompt_tokens, 256)
        one = client.embeddings.create(model=EMBEDDER, input="A man is eating food.")
        self.assertLess(max(abs(a - b) for a, b in zip(one.data[0].embedding, want[0])), 1e-5)
        # The openai client's default is base64, decoded for the caller.
        default = client.embeddings.create(model=EMBEDDER, input=["", "x"])
        self.assertEqual(len(default.data), 2)

    def test_wrong_models(self):
        client = Shared.server.client()
        with self.assertRaises(openai.NotFoundError):
            client.embeddings.create(model=BASE, input="x")
        with self.assertRaises(openai.BadRequestError):
            client.chat.completions.create(model=EMBEDDER, messages=QUESTION)


class Adapters(unittest.TestCase):
    def test_models_list(self):
        ids = [m.id for m in Shared.server.client().models.list()]
        self.assertEqual(ids[0], BASE)
        for want in (BASE + ":pirate", "pirate", EMBEDDER):
            self.assertIn(want, ids)

    def test_adapter_changes_the_output_and_the_base_stays(self):
        base = chat(max_tokens=24, temperature=0).choices[0].message.content
        want = json.loads(run_wick(ARGS.wick, "generate", "--model", SMOL, "--device", "cpu", "--chat", "--prompt",
                                   QUESTION[0]["content"], "--adapter", Shared.adapter, "--max-tokens", "24",
                                   "--temperature", "0", "--json"))["text"]
        by_name = chat(model="pirate", max_tokens=24, temperature=0).choices[0].message.content
        by_pair = chat(model=BASE + ":pirate", max_tokens=24, temperature=0).choices[0].message.content
        self.assertEqual(by_name, want)
        self.assertEqual(by_pair, want)
        self.assertNotEqual(want, base)
        # Concurrent requests with and without the adapter each get their own answer.
        results = {}

        def ask(key, model):
            results[key] = chat(model=model, max_tokens=24, temperature=0).choices[0].message.content

        threads = [threading.Thread(target=ask, args=(i, "pirate" if i % 2 else BASE)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(6):
            self.assertEqual(results[i], want if i % 2 else base)
        self.assertEqual(chat(max_tokens=24, temperature=0).choices[0].message.content, base)

    def test_load_and_unload_at_run_time(self):
        s = Shared.server
        status, body = s.request("POST", "/v1/adapters", {"name": "parrot", "path": Shared.adapter})
        self.assertEqual(status, 201, body)
        self.assertIn("parrot", [m.id for m in s.client().models.list()])
        pirate = chat(model="pirate", max_tokens=10, temperature=0).choices[0].message.content
        self.assertEqual(chat(model="parrot", max_tokens=10, temperature=0).choices[0].message.content, pirate)
        self.assertEqual(s.request("POST", "/v1/adapters", {"name": "parrot", "path": Shared.adapter})[0], 409)
        self.assertEqual(s.request("POST", "/v1/adapters", {"name": "x", "path": "/no/such/adapter"})[0], 400)
        self.assertEqual(s.request("POST", "/v1/adapters", {"name": "a:b", "path": Shared.adapter})[0], 400)
        self.assertEqual(s.request("POST", "/v1/adapters", {"name": "x"})[0], 400)
        self.assertEqual(s.request("DELETE", "/v1/adapters/parrot")[0], 200)
        self.assertEqual(s.request("DELETE", "/v1/adapters/parrot")[0], 404)
        with self.assertRaises(openai.NotFoundError):
            chat(model="parrot")
        self.assertNotIn("parrot", [m.id for m in s.client().models.list()])


class BadInput(unittest.TestCase):
    def expect(self, status, body=None, path="/v1/chat/completions", raw=None, method="POST", code=None, param=None):
        got, answer = Shared.server.request(method, path, body, raw=raw)
        self.assertEqual(got, status, (body if raw is None else raw[:80], answer))
        self.assertIsInstance(answer, dict, answer)
        error = answer["error"]
        self.assertTrue(error["message"])
        self.assertEqual(set(error), {"message", "type", "param", "code"})
        if code:
            self.assertEqual(error["code"], code)
        if param:
            self.assertEqual(error["param"], param)

    def test_each_bad_input_has_its_status(self):
        good = {"model": BASE, "messages": QUESTION, "max_tokens": 2}
        self.expect(400, raw=b'{"model": "x", "messages": [', code="invalid_json")
        self.expect(400, raw=b"\xff\xfe not json")
        self.expect(400, {**good, "messages": "hello"}, param="messages")
        self.expect(400, {**good, "max_tokens": "5"}, param="max_tokens")
        self.expect(400, {**good, "max_tokens": 0}, param="max_tokens")
        self.expect(400, {**good, "max_tokens": -3}, param="max_tokens")
        self.expect(400, {**good, "temperature": -1}, param="temperature")
        self.expect(400, {**good, "top_p": 0}, param="top_p")
        self.expect(400, {**good, "top_p": 1.5}, param="top_p")
        self.expect(400, {**good, "n": 17}, param="n")
        self.expect(400, {**good, "presence_penalty": 9}, param="presence_penalty")
        self.expect(400, {**good, "stop": [1, 2]}, param="stop")
        self.expect(400, {**good, "response_format": {"type": "json_object"}}, param="response_format")
        self.expect(400, {**good, "logprobs": True, "top_logprobs": 50}, param="top_logprobs")
        self.expect(404, {**good, "model": "no-such-model"}, code="model_not_found")
        self.expect(404, {**good, "model": BASE + ":no-such-adapter"}, code="model_not_found")
        long_prompt = [{"role": "user", "content": "word " * (CONTEXT + 20)}]
        self.expect(400, {**good, "messages": long_prompt}, code="context_length_exceeded")
        self.expect(400, {**good, "max_tokens": CONTEXT}, code="context_length_exceeded")
        self.expect(400, {"model": BASE, "prompt": "x", "echo": True}, path="/v1/completions", param="echo")
        self.expect(400, {"model": BASE, "prompt": [1, 10 ** 7]}, path="/v1/completions")
        self.expect(400, {"model": BASE, "prompt": ""}, path="/v1/completions")
        self.expect(413, raw=b'{"model": "' + b"x" * (2 << 20) + b'"}', code="body_too_large")
        self.expect(404, {}, path="/v1/nothing-here")
        with self.assertRaises(openai.BadRequestError) as caught:
            chat(temperature=5)
        self.assertEqual(caught.exception.status_code, 400)
        # None of it disturbed the server.
        self.assertEqual(chat(max_tokens=32, temperature=0).choices[0].finish_reason, "stop")


class Streams(unittest.TestCase):
    def test_a_client_leaving_mid_stream_cancels_its_sequence(self):
        s = Shared.server
        before = s.metrics()
        body = json.dumps({"model": BASE, "prompt": "Once upon a time", "max_tokens": 200, "stream": True,
                           "ignore_eos": True, "temperature": 0}).encode()
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while received.count(b"data: ") < 3:
            received += sock.recv(4096)
        sock.close()
        after, idle = s.wait_idle()
        self.assertTrue(idle, after)
        generated = after["wick_generation_tokens_total"] - before["wick_generation_tokens_total"]
        self.assertLess(generated, 150)  # it stopped well before max_tokens
        self.assertEqual(chat(max_tokens=4, temperature=0).choices[0].finish_reason, "length")

    def test_metrics_and_health(self):
        s = Shared.server
        chat(max_tokens=3)
        self.assertEqual(s.request("GET", "/health"), (200, {"status": "ok"}))
        m = s.metrics()
        self.assertGreater(m['wick_http_requests_total{endpoint="/v1/chat/completions",status="200"}'], 0)
        self.assertGreater(m["wick_time_to_first_token_seconds_count"], 0)
        self.assertGreater(m["wick_time_per_output_token_seconds_count"], 0)
        self.assertGreater(m['wick_time_to_first_token_seconds_bucket{le="+Inf"}'], 0)
        self.assertGreater(m["wick_kv_blocks_total"], 0)
        for name in ("wick_prompt_tokens_total", "wick_generation_tokens_total", "wick_queue_length",
                     "wick_running_batch_size", "wick_kv_blocks_in_use"):
            self.assertIn(name, m)


class AuthAndShutdown(unittest.TestCase):
    def test_api_key_and_adapter_loading_switch(self):
        server = WickServer(ARGS.wick, "--model", SMOL, "--api-key", "s3cret", "--ctx", "128")
        try:
            with self.assertRaises(openai.AuthenticationError):
                server.client(api_key="wrong").models.list()
            status, body = server.request("GET", "/v1/models")
            self.assertEqual(status, 401)
            self.assertEqual(body["error"]["code"], "invalid_api_key")
            self.assertEqual(server.request("POST", "/v1/chat/completions", {"model": BASE, "messages": QUESTION})[0], 401)
            self.assertEqual(server.request("GET", "/health")[0], 200)
            good = server.client(api_key="s3cret")
            self.assertEqual(good.models.list().data[0].id, BASE)
            self.assertEqual(good.chat.completions.create(model=BASE, messages=QUESTION, max_tokens=2).usage.completion_tokens, 2)
            status, _ = server.request("POST", "/v1/adapters", {"name": "p", "path": Shared.adapter},
                                       headers={"Authorization": "Bearer s3cret"})
            self.assertEqual(status, 403)  # no --allow-adapter-loading
        finally:
            self.assertEqual(server.stop(), 0)

    def test_sigterm_lets_a_stream_finish_then_exits_0(self):
        server = WickServer(ARGS.wick, "--model", SMOL, "--ctx", "128", "--shutdown-grace", "300")
        chunks, errors = [], []
        started = threading.Event()

        def stream():
            try:
                for c in server.client().completions.create(model=BASE, prompt="Once upon a time", max_tokens=8,
                                                            temperature=0, stream=True, extra_body={"ignore_eos": True}):
                    chunks.append(c)
                    started.set()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                started.set()

        t = threading.Thread(target=stream)
        t.start()
        try:
            self.assertTrue(started.wait(120))
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            if server.process.poll() is None:  # still draining: new work is refused
                try:
                    status, _ = server.request("POST", "/v1/completions", {"model": BASE, "prompt": "x", "max_tokens": 2})
                    self.assertEqual(status, 503)
                except OSError:
                    pass  # already closed
            t.join(300)
            self.assertEqual(errors, [])
            self.assertEqual(chunks[-1].choices[0].finish_reason, "length")
            self.assertEqual(chunks[-1].usage.completion_tokens, 8)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
