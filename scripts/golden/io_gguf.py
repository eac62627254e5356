#!/usr/bin/env python3
"""Golden GGUF files for tests/io, written and dequantized by the reference `gguf` package.

Regenerate (from the repo root):
    python3 -m pip install numpy gguf        # written with gguf 0.19.0, numpy 2.x
    python3 scripts/golden/io_gguf.py        # writes tests/data/io/gguf/

Files written:
  golden.gguf           llama-arch metadata of every value type (incl. nested arrays), tokenizer
                        keys, and one tensor per GGML type wick dequantizes (4 rows x 512 columns):
                        Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/BF16 quantized from random normals by the package's
                        quantizers; Q2_K..Q6_K random blocks with valid f16 scales (the package has no
                        K-quantizer); F32/F16/I32 plain; permutation check tensors (see below).
  expected.f32          the package's numpy dequantization of every tensor, float32 little-endian,
                        concatenated
  expected.json         name -> {type, shape (PyTorch order), offset and count in expected.f32}
  quantize.gguf         quantizer goldens: `src` (F32, 9 rows x 256 columns: 4 rows of random normals,
                        one of random normals at scales 1e-3..3e4 per block, then the blocks of
                        edge_blocks() and sensitive_blocks(), padded with normals) and
                        `q.<TYPE>` = gguf.quants.quantize(src, TYPE)
                        for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/F16/BF16, the package's bytes that wick's
                        quantize_from_f32 must reproduce exactly. Written on x86-64: the block of f32
                        subnormals depends on numpy's float->int cast of inf/NaN, which gives 0 there
                        (on arm64 it saturates, so regenerating there changes that block of Q4/Q5).

The permutation check: `perm.q_hf` / `perm.k_hf` are random HF-order rows and `blk.0.attn_q.weight` /
`blk.0.attn_k.weight` the rows after llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute` (reproduced
below), with n_head = wick.test.n_head and n_head_kv = wick.test.n_head_kv.
"""
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "io", "gguf")
ROWS, COLS = 4, 512
N_HEAD, N_HEAD_KV, HEAD_DIM = 4, 2, 8


def permute(weights, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute, verbatim."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def random_k_blocks(rng, qtype, n_blocks):
    """Random bytes with every f16 scale field replaced by a finite random value."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    # Byte offsets of the f16 super-block scales (d, and dmin where the type has one).
    f16_fields = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    for off in f16_fields:
        d = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        blocks[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def edge_blocks(rng):
    """18 blocks of 32 floats at the corners of the quantizers' arithmetic."""
    def normals(scale=1.0):
        return rng.standard_normal(32).astype(np.float32) * np.float32(scale)

    blocks = [np.zeros(32, np.float32), np.full(32, -0.0, np.float32), np.full(32, 3.0, np.float32)]
    for first, second in ((2.5, -2.5), (-2.5, 2.5)):  # ties for the largest magnitude: the first wins
        b = rng.uniform(-2, 2, 32).astype(np.float32)
        b[3], b[20] = first, second
        blocks.append(b)
    b = normals()
    b[7] = 1e10  # d overflows f16 (inf)
    blocks.append(b)
    b = normals()
    b[25] = -5000.0  # one value dwarfs the rest
    blocks.append(b)
    b = np.zeros(32, np.float32)
    b[31] = -1.0  # the last element alone: high nibble of byte 15, bit 31 of qh
    blocks.append(b)
    blocks.append(normals(1e-6))  # d an f16 subnormal
    blocks.append(normals(1e-9))  # d rounds to f16 zero
    b = normals(1e-40)  # f32 subnormals: 1/d overflows to inf (see the docstring)
    b[0] = 0.0
    blocks.append(b)
    b = normals(1e-40)
    b[9] = 1e-30  # normal largest value over f32 subnormals: finite 1/d, subnormal products
    blocks.append(b)
    # Exact ties of each type's rounding (round half away from zero; trunc(v + 0.5)): Q8_0 with d = 1;
    # Q4_0 (d = 2, odd x) and Q5_0 (d = 1, half-integer x) with max = -16; Q5_1 and Q4_1 with d = 1.
    blocks.append(np.array([127, -127] + [(k + 0.5) * (-1) ** k for k in range(30)], np.float32))
    blocks.append(np.array([-16] + list(range(-15, 16, 2)) + [k - 7.5 for k in range(15)], np.float32))
    blocks.append(np.array([0, 31] + [k + 0.5 for k in range(30)], np.float32))
    blocks.append(np.array([0, 15] + [k % 15 + 0.5 for k in range(30)], np.float32))
    # Q8_0 d exactly halfway between two f16 values: 1 + 2^-11 rounds down (to even), 1 + 3*2^-11 up.
    for d in (1 + 2.0**-11, 1 + 3 * 2.0**-11):
        b = rng.uniform(-100, 100, 32).astype(np.float32)
        b[11] = np.float32(127 * d)
        blocks.append(b)
    assert len(blocks) == 18, len(blocks)
    return np.stack(blocks)


def sensitive_blocks(rng):
    """Random-normal blocks on which a quantizer taking another float32 path would change a quant:
    a fused multiply-add in Q4_0/Q5_0's x*id + 8.5 (16.5), x/d in place of x*(1/d) in each type, or
    Q8_0's 127/amax in place of 1/(amax/127). (A fused (x-min)*id + 0.5 in Q4_1/Q5_1 differs too
    rarely, about once in 5e7 blocks, to be searched for here.) Each is the first such block drawn."""
    f32 = np.float32

    def symmetric(b, half):
        d = np.take_along_axis(b, abs(b).argmax(axis=-1, keepdims=True), axis=-1) / f32(-half)
        return d, f32(1) / d

    def affine(b, q_max):
        mn = b.min(axis=-1, keepdims=True)
        d = (b.max(axis=-1, keepdims=True) - mn) / f32(q_max)
        return b - mn, d, f32(1) / d

    def fused(a, b, c):  # round(a*b + c) once: the product of two f32 is exact in f64
        return (a.astype(np.float64) * b.astype(np.float64) + c).astype(f32)

    def q(v, q_max):
        return np.clip(np.trunc(v), 0, q_max)

    variants = []
    for half in (8, 16):
        variants.append(lambda b, h=half: q(b * symmetric(b, h)[1] + f32(h + .5), 2 * h - 1)
                        != q(fused(b, symmetric(b, h)[1], h + .5), 2 * h - 1))
        variants.append(lambda b, h=half: q(b * symmetric(b, h)[1] + f32(h + .5), 2 * h - 1)
                        != q(b / symmetric(b, h)[0] + f32(h + .5), 2 * h - 1))
    for q_max in (15, 31):
        variants.append(lambda b, m=q_max: q(affine(b, m)[0] * affine(b, m)[2] + f32(.5), m)
                        != q(affine(b, m)[0] / affine(b, m)[1] + f32(.5), m))
    amax = lambda b: abs(b).max(axis=-1, keepdims=True)
    q8 = lambda b: gguf.quants.np_roundf(b * (f32(1) / (amax(b) / f32(127))))
    variants.append(lambda b: q8(b) != gguf.quants.np_roundf(b / (amax(b) / f32(127))))
    variants.append(lambda b: q8(b) != gguf.quants.np_roundf(b * (f32(127) / amax(b))))

    found = []
    for differs in variants:
        while True:
            b = rng.standard_normal((1 << 14, 32)).astype(f32)
            hit = np.flatnonzero(differs(b).any(axis=-1))
            if hit.size:
                found.append(b[hit[0]])
                break
    return np.stack(found)


def write_quantize_golden():
    rng = np.random.default_rng(20261128)
    cols = 256
    rows = [rng.standard_normal((4, cols)).astype(np.float32)]
    scales = np.array([1e-3, 1e-2, 0.1, 1, 10, 100, 1e3, 3e4], np.float32)
    rows.append((rng.standard_normal((cols // 32, 32)) * scales[:, None]).astype(np.float32).reshape(1, cols))
    edges = np.concatenate([edge_blocks(rng), sensitive_blocks(rng)])
    pad = (-len(edges)) % (cols // 32)
    edges = np.concatenate([edges, rng.standard_normal((pad, 32)).astype(np.float32)])
    rows.append(edges.reshape(-1, cols))
    src = np.concatenate(rows)

    path = os.path.join(OUT, "quantize.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tensor("src", src)
    for qtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.F16, T.BF16):
        with np.errstate(all="ignore"):  # the edge blocks overflow 1/d and f16 on purpose
            raw = gguf.quants.quantize(src, qtype)
        w.add_tensor(f"q.{qtype.name}", raw, raw_dtype=qtype if qtype != T.F16 else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {path}: src {list(src.shape)}, {os.path.getsize(path)} bytes")


def main():
    rng = np.random.default_rng(20261127)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "golden.gguf")
    w = gguf.GGUFWriter(path, arch="llama")

    # One key per metadata value type, then arrays (incl. nested) -- values asserted in gguf_test.cpp.
    w.add_key_value("wick.test.u8", 200, V.UINT8)
    w.add_key_value("wick.test.i8", -100, V.INT8)
    w.add_key_value("wick.test.u16", 60000, V.UINT16)
    w.add_key_value("wick.test.i16", -30000, V.INT16)
    w.add_key_value("wick.test.u32", 4000000000, V.UINT32)
    w.add_key_value("wick.test.i32", -2000000000, V.INT32)
    w.add_key_value("wick.test.u64", 2**63 + 5, V.UINT64)
    w.add_key_value("wick.test.i64", -2**62, V.INT64)
    w.add_key_value("wick.test.f32", 0.1, V.FLOAT32)
    w.add_key_value("wick.test.f64", 0.1, V.FLOAT64)
    w.add_key_value("wick.test.bool", True, V.BOOL)
    w.add_key_value("wick.test.string", "héllo ✓", V.STRING)
    w.add_key_value("wick.test.array_i32", [1, -2, 3], V.ARRAY, V.INT32)
    w.add_key_value("wick.test.array_f32", [0.5, -1.25], V.ARRAY, V.FLOAT32)
    w.add_key_value("wick.test.array_str", ["a", "", "ccc"], V.ARRAY, V.STRING)
    w.add_key_value("wick.test.array_bool", [True, False], V.ARRAY, V.BOOL)
    w.add_key_value("wick.test.nested", [[1, 2], [3]], V.ARRAY)
    w.add_key_value("wick.test.n_head", N_HEAD, V.UINT32)
    w.add_key_value("wick.test.n_head_kv", N_HEAD_KV, V.UINT32)

    # Llama hyper-parameters and tokenizer keys, as convert_hf_to_gguf.py writes them.
    w.add_name("wick golden")
    w.add_context_length(2048)
    w.add_embedding_length(N_HEAD * HEAD_DIM)
    w.add_block_count(2)
    w.add_feed_forward_length(128)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(["<|endoftext|>", "a", "b", "ab", "Ġc"])
    w.add_token_scores([0.0, -1.0, -2.0, -3.0, -4.0])
    w.add_token_types([3, 1, 1, 1, 1])
    w.add_token_merges(["a b"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_pad_token_id(4)
    w.add_add_bos_token(False)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")

    expected = {}
    values = []

    def add(name, raw, qtype, deq):
        w.add_tensor(name, raw, raw_dtype=qtype if qtype not in (T.F32, T.F16, T.I32) else None)
        deq = np.asarray(deq, dtype=np.float32)
        offset = sum(v.size for v in values)
        values.append(deq.ravel())
        expected[name] = {"type": qtype.name, "shape": list(deq.shape), "offset": offset,
                          "count": int(deq.size)}

    src = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    for qtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.BF16):
        raw = gguf.quants.quantize(src, qtype)
        add(f"q.{qtype.name}", raw, qtype, gguf.quants.dequantize(raw, qtype))
    for qtype in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        n_blocks = ROWS * COLS // 256
        raw = random_k_blocks(rng, qtype, n_blocks).reshape(ROWS, -1)
        add(f"q.{qtype.name}", raw, qtype, gguf.quants.dequantize(raw, qtype))
    f16 = (rng.standard_normal((ROWS, COLS)) * 10).astype(np.float16)
    add("q.F16", f16, T.F16, f16.astype(np.float32))
    f32 = rng.standard_normal((2, 3, 32)).astype(np.float32)
    add("q.F32", f32, T.F32, f32)
    i32 = rng.integers(-1000, 1000, (3, 5)).astype(np.int32)
    add("q.I32", i32, T.I32, i32.astype(np.float32))

    q_hf = rng.standard_normal((N_HEAD * HEAD_DIM, 6)).astype(np.float32)
    k_hf = rng.standard_normal((N_HEAD_KV * HEAD_DIM, 6)).astype(np.float32)
    add("perm.q_hf", q_hf, T.F32, q_hf)
    add("perm.k_hf", k_hf, T.F32, k_hf)
    # Named as the converter names them, so llama.* head counts apply to them too.
    add("blk.0.attn_q.weight", permute(q_hf, N_HEAD, N_HEAD), T.F32, permute(q_hf, N_HEAD, N_HEAD))
    add("blk.0.attn_k.weight", permute(k_hf, N_HEAD, N_HEAD_KV), T.F32, permute(k_hf, N_HEAD, N_HEAD_KV))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    np.concatenate(values).astype("<f4").tofile(os.path.join(OUT, "expected.f32"))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)

    # Read back with the reference reader as a sanity check of what was written.
    r = gguf.GGUFReader(path)
    for t in r.tensors:
        if t.name in expected:
            assert list(reversed([int(x) for x in t.shape])) == expected[t.name]["shape"], t.name
    print(f"wrote {OUT}: {len(expected)} tensors, {os.path.getsize(path)} bytes")

    write_quantize_golden()


if __name__ == "__main__":
    main()
