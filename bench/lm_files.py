"""lm_files.py: readers of lm's files for the Python anchors in bench/ (token
streams, tok.bpe byte lengths, safetensors), written from docs/formats/ alone.
numpy only, so that each anchor converts to the framework it uses.
tests/bats/pack-spec.bats keeps a reader of its own, as an independent reading
of the spec."""
import json
import struct

import numpy as np


def read_token_stream(path):
    """docs/formats/tokens.md: every token of one or more concatenated streams,
    as int64 (checksums not verified: the lm tools that read the same file do)."""
    with open(path, "rb") as f:
        data = f.read()
    pos, parts = 0, []
    while pos < len(data):
        if data[pos:pos + 4] != b"LMTS":
            raise SystemExit(f"{path}: not a token stream")
        width = data[pos + 6]
        pos += 32
        while True:
            (n,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if n == 0:
                pos += 16  # total, hash
                break
            dt = np.uint16 if width == 2 else np.uint32
            parts.append(np.frombuffer(data, dtype=dt, count=n, offset=pos).astype(np.int64))
            pos += n * width + 8
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _varint(b, p):
    v, s = 0, 0
    while True:
        c = b[p]
        p += 1
        v |= (c & 0x7F) << s
        s += 7
        if not c & 0x80:
            return v, p


def token_byte_lengths(path):
    """docs/formats/vocab.md: bytes per id (specials count 0, as lm-train counts them)."""
    raw = open(path, "rb").read()
    if raw[:4] != b"LMBP":
        raise SystemExit(f"{path}: not a tok.bpe")
    (n_ids,) = struct.unpack_from("<I", raw, 8)
    p = 32 + 1
    plen, p = _varint(raw, p)
    p += plen
    lens = []
    for _ in range(n_ids):
        kind = raw[p]
        p += 1
        if kind == 0:
            lens.append(0)
        elif kind == 1:
            lens.append(1)
            p += 1
        elif kind == 2:
            a, p = _varint(raw, p)
            b, p = _varint(raw, p)
            lens.append(lens[a] + lens[b])
        elif kind in (3, 4):
            n, p = _varint(raw, p)
            p += n
            lens.append(0 if kind == 3 else n)
        else:
            raise SystemExit(f"{path}: bad entry kind {kind}")
    return lens


def read_safetensors(path):
    """Every tensor of a safetensors file as a float32 numpy array (F32, F16, BF16)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base, out = 8 + n, {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        raw = data[base + a:base + b]
        if t["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif t["dtype"] in ("F32", "F16"):
            arr = np.frombuffer(raw, dtype=np.float32 if t["dtype"] == "F32" else np.float16)
            arr = arr.astype(np.float32)
        else:
            raise SystemExit(f"{path}: {name}: dtype {t['dtype']} not read here")
        out[name] = arr.reshape(t["shape"]).copy()
    return out
