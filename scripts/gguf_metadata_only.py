#!/usr/bin/env python3
"""Writes a GGUF that holds another GGUF's metadata and no tensors (a tokenizer-only GGUF).

    python3 scripts/gguf_metadata_only.py INPUT OUTPUT [--same-as FULL.gguf]

INPUT may be truncated anywhere after its metadata: the first slice of a split GGUF is enough
(scripts/fetch-models.sh uses the first of the 22 slices of qwen2.5-coder-1.5b-instruct-q4_k_m.gguf,
whose 5.9 MB of metadata fit in its 50 MiB). The header is parsed here by hand because the `gguf`
package's reader refuses a truncated file. OUTPUT is INPUT's version, a tensor count of 0, INPUT's
metadata key/value bytes copied unchanged, and zero padding to the file's alignment
(general.alignment, default 32), as a GGUF writer pads before an (empty) data section.

--same-as FULL checks that OUTPUT's metadata bytes equal FULL's (e.g. the whole GGUF, when present).
Exits non-zero with a message naming the file and offset on any malformed or truncated input.
"""
import argparse
import mmap
import os
import struct
import sys
from typing import NamedTuple

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Value types: fixed widths; 8 is a string (u64 length + bytes), 9 an array (u32 type, u64 count, items).
FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9
UNPACK = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class GgufError(Exception):
    pass


class Header(NamedTuple):
    version: int
    n_tensors: int
    n_kv: int
    kv: bytes  # the metadata key/value section as stored
    alignment: int
    keys: list


class Cursor:
    def __init__(self, data, source):
        self.data, self.pos, self.source = data, 0, source

    def take(self, n, what):
        if self.pos + n > len(self.data):
            raise GgufError(f"{self.source}: ends at byte {len(self.data)} inside the metadata ({what} at offset "
                            f"{self.pos} needs {n} bytes)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self, what):
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what):
        return struct.unpack("<Q", self.take(8, what))[0]

    def string(self, what):
        return bytes(self.take(self.u64(what), what))


def skip_value(c, vtype, key):
    """Moves past one value; returns it when it is a scalar (for general.alignment), else None."""
    if vtype in FIXED:
        return struct.unpack(UNPACK[vtype], c.take(FIXED[vtype], key))[0]
    if vtype == STRING:
        c.string(key)
        return None
    if vtype == ARRAY:
        item_type = c.u32(key + " (array type)")
        count = c.u64(key + " (array count)")
        if item_type in FIXED:
            c.take(count * FIXED[item_type], key)
        else:
            for _ in range(count):
                skip_value(c, item_type, key)
        return None
    raise GgufError(f"{c.source}: key '{key}': unknown value type {vtype} at offset {c.pos - 4}")


def read_header(data, source):
    """The header of a GGUF (its first bytes up to the end of the metadata are enough)."""
    c = Cursor(data, source)
    if bytes(c.take(4, "magic")) != MAGIC:
        raise GgufError(f"{source}: not a GGUF file (bad magic)")
    version = c.u32("version")
    if version not in (2, 3):
        raise GgufError(f"{source}: GGUF version {version} (only 2 and 3 are read here)")
    n_tensors = c.u64("tensor count")
    n_kv = c.u64("metadata count")
    start = c.pos
    alignment, keys = DEFAULT_ALIGNMENT, []
    for _ in range(n_kv):
        key = c.string("metadata key").decode("utf-8")
        vtype = c.u32(key + " (type)")
        value = skip_value(c, vtype, key)
        if key == "general.alignment":
            alignment = value
        keys.append(key)
    if not alignment or alignment & (alignment - 1):
        raise GgufError(f"{source}: general.alignment = {alignment} is not a power of two")
    return Header(version, n_tensors, n_kv, bytes(data[start:c.pos]), alignment, keys)


def read_file_header(path):
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return read_header(data, path)


def metadata_only(header):
    out = MAGIC + struct.pack("<IQQ", header.version, 0, header.n_kv) + header.kv
    return out + b"\0" * (-len(out) % header.alignment)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--same-as", metavar="FULL", help="check that the metadata equals this GGUF's")
    args = p.parse_args()
    tmp = args.output + ".tmp"
    try:
        header = read_file_header(args.input)
        data = metadata_only(header)
        with open(tmp, "wb") as f:
            f.write(data)
        written = read_file_header(tmp)  # the output parses back to the same metadata, with no tensors
        if written._replace(n_tensors=header.n_tensors) != header or written.n_tensors != 0:
            raise GgufError(f"{tmp}: does not read back as the input's metadata")
        if args.same_as:
            full = read_file_header(args.same_as)
            if full._replace(n_tensors=header.n_tensors) != header:
                raise GgufError(f"{args.input}: metadata differs from {args.same_as}'s")
        os.replace(tmp, args.output)
    except GgufError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        sys.exit(f"gguf_metadata_only: {e}")
    print(f"gguf_metadata_only: wrote {args.output}: GGUF v{header.version}, {header.n_kv} metadata keys "
          f"(input had {header.n_tensors} tensors), {len(data)} bytes")


if __name__ == "__main__":
    main()
