#!/usr/bin/env python3
"""Writes a copy of a wheel without the native libraries a machine does not load, so that a large
wheel fits what the device tool carries. bitsandbytes ships one library per CUDA version (about 43 MB
in all); the GPU box's torch is built for CUDA 13.0, so only libbitsandbytes_cuda130.so (and the CPU
one) are needed:

    python3 scripts/slim-wheel.py bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl \\
        .whl-bnb/ --keep 'libbitsandbytes_(cuda130|cpu)\\.so$' --drop 'libbitsandbytes_.*\\.so$'

Files matching --drop but not --keep are left out, and their lines removed from the wheel's RECORD.
"""
import argparse
import os
import re
import zipfile


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("wheel")
    p.add_argument("out_dir")
    p.add_argument("--drop", required=True, help="regex of member names to leave out")
    p.add_argument("--keep", default=r"(?!)", help="regex of member names kept even when --drop matches")
    a = p.parse_args()
    drop, keep = re.compile(a.drop), re.compile(a.keep)
    os.makedirs(a.out_dir, exist_ok=True)
    out = os.path.join(a.out_dir, os.path.basename(a.wheel))
    if os.path.abspath(out) == os.path.abspath(a.wheel):
        raise SystemExit("slim-wheel: the output would overwrite the input wheel")
    with zipfile.ZipFile(a.wheel) as zin:
        names = [i.filename for i in zin.infolist()]
        dropped = {n for n in names if drop.search(n) and not keep.search(n)}
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename in dropped:
                    continue
                data = zin.read(info.filename)
                if info.filename.endswith(".dist-info/RECORD"):
                    lines = [l for l in data.decode().splitlines() if l.split(",")[0] not in dropped]
                    data = ("\n".join(lines) + "\n").encode()
                zout.writestr(info, data)
    print(f"{out}: {len(dropped)} members left out, {os.path.getsize(out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
