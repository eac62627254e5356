#!/usr/bin/env python3
"""Load generator for OpenAI-compatible servers (issue 15, acceptance 4): N concurrent clients,
each sending a fixed number of streaming `/v1/completions` requests one after another, with
~120-token prompts, 128 new tokens, `ignore_eos: true` and temperature 0. Reports the aggregate
output tokens/s, time to first token (TTFT) p50/p99, time per output token (TPOT, per request:
(end - first token) / (tokens - 1)) and inter-token gaps (ITL) p50/p99, and errors.

Standard library only (asyncio + a small HTTP/1.1 client with chunked transfer and server-sent
events), so it runs with any python3; the same requests go to llama-server and `wick serve`.

  python3 bench/peers/serve_load.py --url http://127.0.0.1:8080 --clients 32 [--requests-per-client 4]
      [--max-tokens 128] [--prompt-words 120] [--prompt-kind text|ids] [--models a,b,...]
      [--api-key KEY] [--seed 0] [--label NAME] [--json-out FILE]

--models spreads clients over models round-robin (client i asks for models[i % len]): a server's
adapters by name. Without it the first id of GET /v1/models is used. Output tokens are the
`usage.completion_tokens` of the last event when the server sends usage, else the number of
events that carry text. Prompts differ per request (seeded), so no prompt cache helps.
Exit status 1 when any request failed.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

# Common English words: with a leading space each is one token of Qwen2.5's (and most BPE) vocabularies.
WORDS = (
    "time year people way day man thing woman life child world school state family student group country "
    "problem hand part place case week company system program question work government number night point "
    "home water room mother area money story fact month lot right study book eye job word business issue "
    "side kind head house service friend father power hour game line end member law car city community name "
    "president team minute idea kid body information back parent face others level office door health person "
    "art war history party result change morning reason research girl guy moment air teacher force education "
    "foot boy age policy music market sense nation plan college interest death experience effect class control "
    "care field development role effort rate heart drug show leader light voice wife police mind price report"
).split()


class HttpError(Exception):
    pass


async def read_head(reader):
    status_line = (await reader.readline()).decode("latin-1").strip()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise HttpError(f"bad status line {status_line!r}")
    headers = {}
    while True:
        line = (await reader.readline()).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def body_chunks(reader, headers):
    """The response body as it arrives: de-chunked, or up to Content-Length, or up to EOF."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = (await reader.readline()).decode("latin-1").strip()
            if not size_line:
                raise HttpError("connection closed inside a chunked body")
            size = int(size_line.split(";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        if n:
            yield await reader.readexactly(n)
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


async def request(url, method, path, body, api_key, timeout):
    """Opens a connection and sends one request; returns (status, headers, reader, writer)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise HttpError(f"only http:// URLs are supported, got {url}")
    host, port = parts.hostname, parts.port or 80
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=1 << 22), timeout)
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close", "Accept: text/event-stream"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    if api_key:
        lines.append(f"Authorization: Bearer {api_key}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    await writer.drain()
    status, headers = await asyncio.wait_for(read_head(reader), timeout)
    return status, headers, reader, writer


async def get_json(url, path, api_key, timeout):
    status, headers, reader, writer = await request(url, "GET", path, None, api_key, timeout)
    try:
        data = b"".join([c async for c in body_chunks(reader, headers)])
    finally:
        writer.close()
    if status != 200:
        raise HttpError(f"GET {path}: HTTP {status}: {data[:300]!r}")
    return json.loads(data)


def make_prompt(rng, kind, words):
    if kind == "ids":
        return [rng.randrange(1000, 100000) for _ in range(words)]
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


async def one_request(args, model, prompt):
    """Sends one streaming completion; returns a dict of timings or raises."""
    body = {"model": model, "prompt": prompt, "max_tokens": args.max_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    t_send = time.perf_counter()
    status, headers, reader, writer = await request(args.url, "POST", "/v1/completions", body, args.api_key,
                                                    args.timeout)
    try:
        if status != 200:
            data = b"".join([c async for c in body_chunks(reader, headers)])
            raise HttpError(f"HTTP {status}: {data[:300].decode('utf-8', 'replace')}")
        token_times, usage, done, pending = [], None, False, b""
        async for chunk in body_chunks(reader, headers):
            now = time.perf_counter()
            pending += chunk
            # Server-sent events end with a blank line; "data:" lines carry the JSON.
            while True:
                cut = min((i for i in (pending.find(b"\n\n"), pending.find(b"\r\n\r\n")) if i >= 0), default=-1)
                if cut < 0:
                    break
                event, pending = pending[:cut], pending[cut:].lstrip(b"\r\n")
                for line in event.splitlines():
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        continue
                    msg = json.loads(data)
                    if "error" in msg:
                        raise HttpError(f"error event: {json.dumps(msg['error'])[:300]}")
                    if msg.get("usage"):
                        usage = msg["usage"]
                    if any(c.get("text") for c in msg.get("choices") or []):
                        token_times.append(now)
        if not done:
            raise HttpError("the stream ended without data: [DONE]")
    finally:
        writer.close()
    t_end = time.perf_counter()
    if not token_times:
        raise HttpError("no token arrived")
    tokens = usage.get("completion_tokens") if usage else None
    return {"send": t_send, "first": token_times[0], "end": t_end, "times": token_times,
            "tokens": tokens if tokens is not None else len(token_times), "usage": usage is not None,
            "prompt_tokens": usage.get("prompt_tokens") if usage else None}


async def client(args, index, model, results, errors):
    rng = random.Random(args.seed * 1_000_003 + index)
    for _ in range(args.requests_per_client):
        prompt = make_prompt(rng, args.prompt_kind, args.prompt_words)
        try:
            results.append(await asyncio.wait_for(one_request(args, model, prompt), args.timeout))
        except (HttpError, OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            errors.append(f"client {index}: {type(e).__name__}: {e}")


def percentile(values, q):
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(args, models, results, errors, wall):
    ttft = [1e3 * (r["first"] - r["send"]) for r in results]
    tpot = [1e3 * (r["end"] - r["first"]) / (r["tokens"] - 1) for r in results if r["tokens"] > 1]
    itl = [1e3 * (b - a) for r in results for a, b in zip(r["times"], r["times"][1:])]
    tokens = sum(r["tokens"] for r in results)
    prompt_tokens = [r["prompt_tokens"] for r in results if r["prompt_tokens"] is not None]
    ms = lambda xs: {"p50": percentile(xs, 50), "p99": percentile(xs, 99), "mean": sum(xs) / len(xs) if xs else None}
    return {
        "label": args.label, "url": args.url, "clients": args.clients, "requests_per_client": args.requests_per_client,
        "models": models, "max_tokens": args.max_tokens, "prompt_kind": args.prompt_kind,
        "prompt_words": args.prompt_words,
        "prompt_tokens_mean": sum(prompt_tokens) / len(prompt_tokens) if prompt_tokens else None,
        "requests_ok": len(results), "errors": len(errors), "error_samples": errors[:10],
        "output_tokens": tokens, "wall_s": wall, "output_tokens_per_s": tokens / wall if wall > 0 else None,
        "token_count_source": "usage" if results and all(r["usage"] for r in results) else "text events",
        "ttft_ms": ms(ttft), "tpot_ms": ms(tpot), "itl_ms": ms(itl),
    }


async def main_async(args):
    if args.models:
        models = [m for m in args.models.split(",") if m]
    else:
        listing = await get_json(args.url, "/v1/models", args.api_key, args.timeout)
        models = [listing["data"][0]["id"]]
    # One short untimed request per model: first-use costs (graph capture, adapter upload) stay out.
    # Its prompt is none of the clients' (a server that caches prompts must not find theirs): the
    # clients' generators are seeded with integers, this one with a string (random.Random(-n) is
    # random.Random(n), so a negative integer would repeat client n's prompts).
    warm = argparse.Namespace(**{**vars(args), "max_tokens": 8})
    for m in models:
        try:
            prompt = make_prompt(random.Random(f"warm-up {args.seed}"), args.prompt_kind, args.prompt_words)
            await one_request(warm, m, prompt)
        except (HttpError, OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            sys.exit(f"serve_load: the warm-up request for model {m!r} failed: {e}")
    results, errors = [], []
    t0 = time.perf_counter()
    await asyncio.gather(*(client(args, i, models[i % len(models)], results, errors) for i in range(args.clients)))
    return summarize(args, models, results, errors, time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="server root, e.g. http://127.0.0.1:8080")
    ap.add_argument("--clients", type=int, required=True, help="concurrent streaming clients")
    ap.add_argument("--requests-per-client", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=120, help="prompt length: words of text, or token ids")
    ap.add_argument("--prompt-kind", choices=["text", "ids"], default="text", help="prompt as text or as token ids")
    ap.add_argument("--models", help="comma-separated model names, spread over the clients")
    ap.add_argument("--api-key")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=300, help="seconds one request may take")
    ap.add_argument("--label", default="", help="a name for this run in the output")
    ap.add_argument("--json-out", help="also write the summary here")
    args = ap.parse_args()
    for name in ("clients", "requests_per_client", "max_tokens", "prompt_words"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    summary = asyncio.run(main_async(args))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=2)
    f = lambda x: "—" if x is None else f"{x:.1f}"
    print(f"{args.label or args.url}: {args.clients} clients, {summary['requests_ok']} requests, "
          f"{summary['output_tokens']} tokens in {summary['wall_s']:.2f} s = "
          f"{f(summary['output_tokens_per_s'])} tok/s; "
          f"TTFT p50 {f(summary['ttft_ms']['p50'])} p99 {f(summary['ttft_ms']['p99'])} ms; "
          f"TPOT p50 {f(summary['tpot_ms']['p50'])} p99 {f(summary['tpot_ms']['p99'])} ms; errors {summary['errors']}")
    for e in summary["error_samples"]:
        print(f"  {e}", file=sys.stderr)
    sys.exit(1 if summary["errors"] else 0)


if __name__ == "__main__":
    main()
