#!/usr/bin/env python3
"""Golden safetensors files for tests/io, written by the reference `safetensors` package.

Regenerate (from the repo root):
    python3 -m pip install numpy safetensors
    python3 scripts/golden/io_safetensors.py            # writes tests/data/io/safetensors/

Check a file written by wick's writer with the reference reader (compares names, dtypes, shapes,
bytes and metadata with golden.safetensors):
    python3 scripts/golden/io_safetensors.py --verify PATH
The C++ test SafetensorsWrite.RoundTripMatchesReferenceBytes leaves such a file at
<build>/tests/io_roundtrip.safetensors.

Files written:
  golden.safetensors      every dtype wick reads, a scalar and an empty tensor, metadata {"format": "pt"}
  expected.json           per tensor: dtype, shape, and the values as numbers (exact in f64)
  sharded/                model.safetensors.index.json + two shards (a sharded checkpoint)
"""
import json
import os
import struct
import sys

import numpy as np
from safetensors import deserialize, serialize, TensorSpec

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "io", "safetensors")
NP_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
            "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
            "BOOL": "bool", "U16": "uint16", "U32": "uint32", "U64": "uint64"}


def f32_to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bfloat16 bits (what torch does)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def make_tensors(rng):
    """name -> (dtype, shape, raw little-endian bytes, values as python numbers)."""
    t = {}

    def add(name, dtype, arr, values=None):
        arr = np.array(arr, order="C")  # (ascontiguousarray would make a scalar 1-d)
        vals = arr.astype(np.float64).ravel().tolist() if values is None else values
        t[name] = (dtype, list(arr.shape), arr.astype(arr.dtype.newbyteorder("<")).tobytes(), vals)

    add("f64.weight", "F64", rng.standard_normal((2, 3)))
    add("f32.weight", "F32", rng.standard_normal((3, 4)).astype(np.float32))
    add("f16.weight", "F16", rng.standard_normal((5,)).astype(np.float16))
    src = rng.standard_normal((2, 2)).astype(np.float32)
    bits = f32_to_bf16_bits(src)
    bf_vals = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64).ravel().tolist()
    t["bf16.weight"] = ("BF16", [2, 2], bits.tobytes(), bf_vals)
    add("i64.ids", "I64", rng.integers(-2**62, 2**62, (3,), dtype=np.int64),
        values=None)
    add("i32.ids", "I32", rng.integers(-2**31, 2**31 - 1, (2, 2), dtype=np.int32))
    add("i16.ids", "I16", rng.integers(-2**15, 2**15 - 1, (3,), dtype=np.int16))
    add("i8.ids", "I8", rng.integers(-128, 127, (4,), dtype=np.int8))
    add("u8.bytes", "U8", rng.integers(0, 255, (5,), dtype=np.uint8))
    add("bool.mask", "BOOL", rng.integers(0, 2, (7,)).astype(bool))
    add("scalar", "F32", np.array(3.5, np.float32))
    add("empty", "F32", np.zeros((0, 3), np.float32))
    # int64 values beyond 2^53 are not exact as doubles: keep them as integers.
    d, s, b, _ = t["i64.ids"]
    t["i64.ids"] = (d, s, b, np.frombuffer(b, "<i8").tolist())
    return t


def write(path, tensors, metadata):
    keep = []
    specs = {}
    for name, (dtype, shape, raw, _) in tensors.items():
        buf = np.frombuffer(raw, np.uint8).copy() if raw else np.zeros(1, np.uint8)
        keep.append(buf)
        specs[name] = TensorSpec(dtype=NP_NAMES[dtype], shape=shape, data_ptr=buf.ctypes.data,
                                 data_len=len(raw))
    data = bytes(serialize(specs, metadata=metadata))
    with open(path, "wb") as f:
        f.write(data)


def verify(path):
    golden = dict(deserialize(open(os.path.join(OUT, "golden.safetensors"), "rb").read()))
    with open(path, "rb") as f:
        data = f.read()
    got = dict(deserialize(data))
    assert set(got) == set(golden), f"names differ: {sorted(set(got) ^ set(golden))}"
    for name, g in golden.items():
        w = got[name]
        for key in ("dtype", "shape"):
            assert w[key] == g[key], f"{name}: {key} {w[key]} != {g[key]}"
        assert bytes(w["data"]) == bytes(g["data"]), f"{name}: bytes differ"
    n = struct.unpack("<Q", data[:8])[0]
    meta = json.loads(data[8:8 + n]).get("__metadata__")
    assert meta == {"format": "pt"}, f"metadata {meta}"
    print(f"{path}: OK, {len(got)} tensors equal to golden.safetensors by the reference reader")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        verify(sys.argv[2])
        return
    rng = np.random.default_rng(1234)
    os.makedirs(os.path.join(OUT, "sharded"), exist_ok=True)
    tensors = make_tensors(rng)
    write(os.path.join(OUT, "golden.safetensors"), tensors, {"format": "pt"})
    expected = {name: {"dtype": d, "shape": s, "values": v} for name, (d, s, _, v) in tensors.items()}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)

    # A sharded checkpoint: two shards and an index, as transformers' save_pretrained writes them.
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for file, members in shards.items():
        write(os.path.join(OUT, "sharded", file), {n: tensors[n] for n in members}, {"format": "pt"})
        weight_map.update({n: file for n in members})
    total = sum(len(tensors[n][2]) for n in names)
    with open(os.path.join(OUT, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
