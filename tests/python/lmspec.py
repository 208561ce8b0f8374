#!/usr/bin/env python3
"""lmspec.py: readers and writers of lm's file formats written from
docs/formats/vocab.md, tokens.md, shard.md, manifest.md and checkpoint.md
alone (not from the C++), with the standard library and the reference XXH3
and zstd libraries through ctypes.

Used by tests/bats/{vocab,tokens,pack,checkpoint}-spec.bats and pack-split.bats:

  lmspec.py vocab-dump FILE            every field and entry of a .bpe file, checked
  lmspec.py vocab-encode FILE TEXT [--allow-special]   ids, one line (tiktoken's algorithm)
  lmspec.py vocab-decode FILE IDS...   bytes to stdout
  lmspec.py vocab-write OUT SPEC.json  a vocabulary from a JSON description
  lmspec.py vocab-rewrite IN OUT       read IN, write it again (must be byte-identical)
  lmspec.py tokens-read FILE           ids of a token stream (input), one line per stream
  lmspec.py tokens-write OUT VOCAB.bpe IDS-FILE [--chunk N]   a stream (from --ids text)
  lmspec.py dataset-read DIR [STREAM [--split-rule F SEED]]   a packed dataset, every rule checked:
                                       "SPLIT TOKENS ENTRIES" lines, then "matches" when the splits
                                       hold STREAM as manifest.md's rule says (no rule: all in train)
  lmspec.py ckpt-check DIR [VOCAB.bpe] every rule of a step directory
  lmspec.py ckpt-build DIR VOCAB.bpe [--seed S] [--untied] [--kv-heads K]   a step directory
  lmspec.py state-reseal FILE          write trainer-state.json's checksum again

Errors: a line "lmspec: ..." on stderr and exit status 1.
"""
import ctypes
import json
import math
import os
import random
import re
import struct
import sys

xx = ctypes.CDLL("libxxhash.so.0")
xx.XXH3_64bits.restype = ctypes.c_uint64
xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def h(b):
    return xx.XXH3_64bits(bytes(b), len(b))


class SpecError(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise SpecError(msg)


# ---------------------------------------------------------------- vocab.md

PATTERNS = {
    1: r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    2: r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    3: r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
KIND_UNUSED, KIND_BYTE, KIND_MERGE, KIND_SPECIAL, KIND_LITERAL = 0, 1, 2, 3, 4
EOT = b"<|endoftext|>"


def read_varint(buf, p, end):
    v, shift = 0, 0
    for i in range(10):
        need(p < end, "varint runs past the body")
        b = buf[p]
        p += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            need(v < 2**64, "varint over 64 bits")
            return v, p
        shift += 7
    raise SpecError("varint longer than 10 bytes")


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Vocab:
    """A vocabulary: pattern_kind, pattern (bytes), entries [(kind, payload)],
    eot_id, tokens (bytes of each id, None for unused), identity."""

    def __init__(self, pattern_kind, pattern, entries, eot_id):
        self.pattern_kind, self.pattern, self.entries, self.eot_id = pattern_kind, pattern, entries, eot_id
        self.identity = None
        self.check()

    def check(self):
        n = len(self.entries)
        need(257 <= n <= 16777216, "n_ids %d out of range" % n)
        need(self.pattern_kind in (0, 1, 2, 3, 4), "pattern_kind %d invalid" % self.pattern_kind)
        need(len(self.pattern) <= 65536, "pattern over 65,536 bytes")
        try:
            self.pattern.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError("pattern is not UTF-8")
        if self.pattern_kind == 4:
            need(len(self.pattern) > 0, "regex pattern empty")
        tokens, seen_bytes, ordinary, specials, total = [], set(), {}, {}, 0
        for i, (kind, payload) in enumerate(self.entries):
            if kind == KIND_UNUSED:
                t = None
            elif kind == KIND_BYTE:
                need(0 <= payload <= 255, "byte value")
                need(payload not in seen_bytes, "byte %d twice" % payload)
                seen_bytes.add(payload)
                t = bytes([payload])
            elif kind == KIND_MERGE:
                l, r = payload
                need(l < i and r < i, "merge %d refers to a later id" % i)
                need(self.entries[l][0] in (1, 2, 4) and self.entries[r][0] in (1, 2, 4),
                     "merge %d of a special or unused id" % i)
                t = tokens[l] + tokens[r]
            elif kind == KIND_SPECIAL:
                t = bytes(payload)
                need(len(t) >= 1, "empty special")
                need(t not in specials, "special twice")
                specials[t] = i
            elif kind == KIND_LITERAL:
                t = bytes(payload)
                need(len(t) >= 2, "literal under 2 bytes")
            else:
                raise SpecError("entry kind %d invalid" % kind)
            if t is not None:
                need(len(t) <= 65536, "token over 65,536 bytes")
                total += len(t)
                need(total <= 67108864, "tokens over 64 MiB")
            if kind in (1, 2, 4):
                need(t not in ordinary, "ordinary token %r twice" % t)
                ordinary[t] = i
            tokens.append(t)
        need(len(seen_bytes) == 256, "not every byte value has a byte entry")
        need(self.eot_id < n, "eot_id out of range")
        need(self.entries[self.eot_id] == (KIND_SPECIAL, EOT), "eot_id is not <|endoftext|>")
        self.tokens, self.ordinary, self.specials = tokens, ordinary, specials

    # -- file
    def body(self):
        out = bytearray([self.pattern_kind]) + varint(len(self.pattern)) + self.pattern
        for kind, payload in self.entries:
            out.append(kind)
            if kind == KIND_BYTE:
                out.append(payload)
            elif kind == KIND_MERGE:
                out += varint(payload[0]) + varint(payload[1])
            elif kind in (KIND_SPECIAL, KIND_LITERAL):
                out += varint(len(payload)) + payload
        return bytes(out)

    def to_bytes(self):
        body = self.body()
        head = struct.pack("<4sHHIIQQ", b"LMBP", 1, 0, len(self.entries), self.eot_id, len(body), 0)
        data = head + body
        self.identity = h(data)
        return data + struct.pack("<Q", self.identity)

    @staticmethod
    def from_bytes(data):
        need(len(data) >= 4 and data[:4] == b"LMBP", "not a vocabulary file")
        need(len(data) >= 40, "truncated")
        magic, version, flags, n_ids, eot_id, body_size, reserved = struct.unpack_from("<4sHHIIQQ", data)
        need(version == 1, "unsupported version %d" % version)
        need(32 + body_size + 8 <= len(data), "truncated")
        need(32 + body_size + 8 == len(data), "trailing bytes")
        (check,) = struct.unpack_from("<Q", data, len(data) - 8)
        need(check == h(data[:-8]), "checksum mismatch")
        need(flags == 0 and reserved == 0, "flags or reserved not 0")
        need(257 <= n_ids <= 16777216, "n_ids out of range")
        end = 32 + body_size
        p = 32
        need(p < end, "body runs past its end")
        kind = data[p]
        p += 1
        plen, p = read_varint(data, p, end)
        need(plen <= 65536, "pattern over 65,536 bytes")
        need(p + plen <= end, "pattern runs past the body")
        pattern = data[p:p + plen]
        p += plen
        entries = []
        for i in range(n_ids):
            need(p < end, "entry %d runs past the body" % i)
            k = data[p]
            p += 1
            if k == KIND_UNUSED:
                entries.append((k, None))
            elif k == KIND_BYTE:
                need(p < end, "byte entry runs past the body")
                entries.append((k, data[p]))
                p += 1
            elif k == KIND_MERGE:
                l, p = read_varint(data, p, end)
                r, p = read_varint(data, p, end)
                entries.append((k, (l, r)))
            elif k in (KIND_SPECIAL, KIND_LITERAL):
                n, p = read_varint(data, p, end)
                need(p + n <= end, "payload runs past the body")
                entries.append((k, bytes(data[p:p + n])))
                p += n
            else:
                raise SpecError("entry kind %d invalid" % k)
        need(p == end, "trailing bytes in the body")
        v = Vocab(kind, bytes(pattern), entries, eot_id)
        v.identity = check
        return v

    # -- encoding (vocab.md "Encoding")
    def regex(self):
        if self.pattern_kind == 0:
            return None
        src = PATTERNS.get(self.pattern_kind) or self.pattern.decode("utf-8")
        try:
            import regex
            return regex.compile(src)
        except ImportError:  # no regex module: ASCII text and patterns gpt2/cl100k only
            for a, b in ((r"\p{L}\p{N}]", "a-zA-Z0-9]"), (r"\p{L}", "[a-zA-Z]"), (r"\p{N}", "[0-9]")):
                src = src.replace(a, b)
            return re.compile(src, re.ASCII)

    def chunks(self, piece):
        rx = self.regex()
        if rx is None or not piece:
            return [piece] if piece else []
        text = piece.decode("utf-8", errors="strict")  # tests use valid UTF-8
        if not text.isascii():
            import regex  # noqa: F401 (the fallback is for ASCII only)
        out, pos = [], 0
        for m in rx.finditer(text):
            if m.start() > pos:
                out.append(text[pos:m.start()])
            if m.end() > m.start():
                out.append(m.group())
            pos = m.end()
        if pos < len(text):
            out.append(text[pos:])
        return [c.encode("utf-8") for c in out]

    def bpe(self, chunk):
        if chunk in self.ordinary:
            return [self.ordinary[chunk]]
        parts = [bytes([b]) for b in chunk]
        while True:
            best = None
            for j in range(len(parts) - 1):
                t = self.ordinary.get(parts[j] + parts[j + 1])
                if t is not None and (best is None or t < best[0]):
                    best = (t, j)
            if best is None:
                return [self.ordinary[p] for p in parts]
            j = best[1]
            parts[j:j + 2] = [parts[j] + parts[j + 1]]

    def encode(self, text, allow_special=False):
        pieces = []
        if allow_special and self.specials:
            pos, start = 0, 0
            while pos < len(text):
                hit = None
                for s, i in self.specials.items():
                    if text.startswith(s, pos) and (hit is None or len(s) > len(hit[0])):
                        hit = (s, i)
                if hit:
                    pieces.append(text[start:pos])
                    pieces.append(hit[1])
                    pos += len(hit[0])
                    start = pos
                else:
                    pos += 1
            pieces.append(text[start:])
        else:
            pieces = [text]
        ids = []
        for p in pieces:
            if isinstance(p, int):
                ids.append(p)
            else:
                for c in self.chunks(p):
                    ids += self.bpe(c)
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            need(0 <= i < len(self.tokens) and self.tokens[i] is not None, "id %d not decodable" % i)
            out += self.tokens[i]
        return bytes(out)


def vocab_file_bytes(pattern_kind, pattern, entries, eot_id, version=1, flags=0, reserved=0, n_ids=None,
                     body=None, body_extra=b"", magic=b"LMBP", good_checksum=True):
    """A vocabulary file with every field given, no invariant checked (for
    files a reader must refuse); `body` replaces the encoded body."""
    v = Vocab.__new__(Vocab)
    v.pattern_kind, v.pattern, v.entries = pattern_kind, pattern, entries
    b = (v.body() if body is None else body) + body_extra
    head = struct.pack("<4sHHIIQQ", magic, version, flags, len(entries) if n_ids is None else n_ids, eot_id,
                       len(b), reserved)
    d = head + b
    return d + struct.pack("<Q", h(d) if good_checksum else h(d) ^ 1)


def read_vocab(path):
    try:
        return Vocab.from_bytes(open(path, "rb").read())
    except SpecError as e:
        raise SpecError("%s: %s" % (path, e))


# ---------------------------------------------------------------- tokens.md

NO_EOT = 0xFFFFFFFF


def stream_bytes(ids, vocab_size, eot_id, identity, chunk=65536):
    width = 2 if vocab_size <= 65536 else 4
    head = struct.pack("<4sHBBIIQ", b"LMTS", 1, width, 0, vocab_size, eot_id, identity)
    out = bytearray(head + struct.pack("<Q", h(head)))
    fmt = "<%d" + ("H" if width == 2 else "I")
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        toks = struct.pack(fmt % len(part), *part)
        out += struct.pack("<I", len(part)) + toks + struct.pack("<Q", h(toks))
    end = struct.pack("<IQ", 0, len(ids))
    return bytes(out + end + struct.pack("<Q", h(end)))


def read_streams(data):
    """[(header dict, ids)] of every stream in the input, all rules checked."""
    need(len(data) > 0, "empty input")
    p, streams, first = 0, [], None
    while True:
        need(len(data) - p >= 32, "truncated header")
        magic, version, width, flags, vs, eot, ident, hc = struct.unpack_from("<4sHBBIIQQ", data, p)
        need(magic == b"LMTS", "bad magic")
        need(version == 1, "unsupported version")
        need(hc == h(data[p:p + 24]), "header checksum")
        need(flags == 0, "flags")
        need(vs > 0, "vocab size 0")
        need(width == (2 if vs <= 65536 else 4), "width %d for vocab size %d" % (width, vs))
        need(eot == NO_EOT or eot < vs, "eot id")
        hd = {"vocab_size": vs, "eot_id": eot, "identity": ident, "width": width}
        if first is None:
            first = hd
        else:
            need((vs, ident, eot) == (first["vocab_size"], first["identity"], first["eot_id"]),
                 "another vocabulary or end-of-text id")
        p += 32
        ids = []
        while True:
            need(len(data) - p >= 4, "truncated: no end frame")
            (n,) = struct.unpack_from("<I", data, p)
            if n == 0:
                need(len(data) - p >= 20, "truncated end frame")
                (total, c) = struct.unpack_from("<QQ", data, p + 4)
                need(c == h(data[p:p + 12]), "end frame checksum")
                need(total == len(ids), "end frame total %d != %d" % (total, len(ids)))
                p += 20
                break
            need(n <= 1048576, "chunk over 1,048,576 tokens")
            need(len(data) - p >= 4 + n * width + 8, "truncated chunk")
            toks = data[p + 4:p + 4 + n * width]
            (c,) = struct.unpack_from("<Q", data, p + 4 + n * width)
            need(c == h(toks), "chunk checksum")
            vals = struct.unpack("<%d%s" % (n, "H" if width == 2 else "I"), toks)
            need(max(vals) < vs, "token out of range")
            ids += vals
            p += 4 + n * width + 8
        streams.append((hd, ids))
        if p == len(data):
            return streams


# ---------------------------------------------------------------- shard.md, manifest.md

def unzstd(src, size):
    zs = ctypes.CDLL("libzstd.so.1")
    zs.ZSTD_decompress.restype = ctypes.c_size_t
    zs.ZSTD_decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    zs.ZSTD_isError.argtypes = [ctypes.c_size_t]
    dst = ctypes.create_string_buffer(size)
    n = zs.ZSTD_decompress(dst, size, bytes(src), len(src))
    need(not zs.ZSTD_isError(n) and n == size, "bad zstd frame")
    return dst.raw


def shard_writer(e):
    """manifest.md's writer of a shard: its "writer", else the ID of its file name."""
    if "writer" in e:
        return e["writer"]
    m = re.fullmatch(r"(train|val)-([0-9a-f]{16})-[0-9]{6,}\.lms", e["file"])
    return m.group(2) if m else None


def read_shard(path, e, m):
    """One shard by shard.md, checked against its manifest entry: (tokens, ends, numbers)."""
    vs, vid, eot = m["vocab"]["size"], int(m["vocab"]["id"], 16), m["vocab"]["eot"]
    width = m["token_width"]
    data = open(path, "rb").read()
    need(len(data) == e["bytes"] and h(data) == int(e["hash"], 16), "%s: size or hash" % path)
    (magic, ver, w, flags, hvs, heot, hvid, T, D, K, B, idx, hh) = struct.unpack_from("<4sHBBIIQQQIIQQ", data, 0)
    need(magic == b"LMSH" and ver == 1 and hh == h(data[:56]) and flags & ~1 == 0, "%s: header" % path)
    need((hvs, hvid, w) == (vs, vid, width) and heot == (eot if eot >= 0 else NO_EOT), "%s: vocabulary" % path)
    need((T, D, B) == (e["tokens"], e["documents"], e["blocks"]) and T >= 1, "%s: counts" % path)
    need(B == (T + K - 1) // K and len(data) == idx + 24 * B + 16 * D + 8, "%s: size" % path)
    index = data[idx:]
    need(struct.unpack_from("<Q", index, len(index) - 8)[0] == h(index[:-8]), "%s: index checksum" % path)
    need((flags & 1) == (e["level"] > 0), "%s: compression flag" % path)
    off, toks, fmt = 64, [], "H" if width == 2 else "I"
    for b in range(B):
        o, ss, rs, bh = struct.unpack_from("<QIIQ", index, 24 * b)
        n = min(K, T - b * K)
        need(o == off and rs == n * width and h(data[o:o + ss]) == bh, "%s: block %d" % (path, b))
        raw = unzstd(data[o:o + ss], rs) if flags & 1 else data[o:o + ss]
        toks += struct.unpack("<%d%s" % (n, fmt), raw)
        off += ss
    need(off == idx, "%s: blocks do not tile" % path)
    if not flags & 1:  # raw tokens sit in place from byte 64
        need(list(struct.unpack_from("<%d%s" % (T, fmt), data, 64)) == toks, "%s: raw tokens" % path)
    ends = struct.unpack_from("<%dQ" % D, index, 24 * B)
    numbers = struct.unpack_from("<%dQ" % D, index, 24 * B + 8 * D)
    need(all(a < b for a, b in zip(numbers, numbers[1:])), "%s: numbers" % path)
    need(all(a < b for a, b in zip((0,) + ends, ends)) and (D == 0 or ends[-1] <= T), "%s: ends" % path)
    need(max(toks) < vs, "%s: token out of range" % path)
    if eot >= 0:
        need(sum(1 for t in toks if t == eot) == sum(1 for x in ends if toks[x - 1] == eot),
             "%s: an end-of-text that ends no entry" % path)
    return toks, ends, numbers


def read_dataset(d):
    """A dataset by manifest.md and shard.md, every rule checked: ({split: tokens},
    {split: entries}, manifest). An entry that ends without end-of-text must be the last
    of its shard, or the head of a cut document: in a train shard of a writer
    with val_cut, its number also in that writer's val split."""
    m = json.load(open(os.path.join(d, "manifest.json")))
    need(m["format"] == "lm-dataset" and m["version"] == 1, "format or version")
    need(m["token_width"] == (2 if m["vocab"]["size"] <= 65536 else 4), "token width")
    eot = m["vocab"]["eot"]
    writers = {w["id"]: w for w in m.get("writers", [])}
    tokens, docs, heads, val_numbers = {"train": [], "val": []}, {"train": 0, "val": 0}, [], {}
    for e in m["shards"]:
        toks, ends, numbers = read_shard(os.path.join(d, e["file"]), e, m)
        wid = shard_writer(e)
        cuts = writers.get(wid, {}).get("val_cut", 0) > 0
        for x, num in zip(ends, numbers):
            if eot < 0 or toks[x - 1] == eot:
                continue
            if e["split"] == "train" and cuts:
                heads.append((wid, num, x == len(toks)))
            else:
                need(x == len(toks), "%s: an entry ends without end-of-text" % e["file"])
        if e["split"] == "val":
            val_numbers.setdefault(wid, set()).update(numbers)
        tokens[e["split"]] += toks
        docs[e["split"]] += len(ends)
    for wid, num, at_end in heads:
        need(num in val_numbers.get(wid, set()) or at_end,
             "writer %s: document %d ends without end-of-text and has no tail in val" % (wid, num))
    return tokens, docs, m


def split_documents(ids, eot):
    """A writer's input as documents: each up to and including an end-of-text."""
    docs, doc = [], []
    for t in ids:
        doc.append(t)
        if t == eot:
            docs.append(doc)
            doc = []
    if doc:
        docs.append(doc)
    return docs


def split_rule(ids, eot, fraction, seed, cut=None):
    """manifest.md's split rule over one writer's input: {split: tokens}, and
    the number of documents cut. cut=None: no val_cut (no document is cut)."""
    want, ncut = {"train": [], "val": []}, 0
    for i, doc in enumerate(split_documents(ids, eot)):
        n = len(doc)
        if cut is None or n <= cut:
            head = struct.pack("<%dI" % min(64, n), *doc[:64])
            u = (h(struct.pack("<QQQ", seed, i, h(head))) >> 11) / 2.0**53
            want["val" if u < fraction else "train"] += doc
        else:
            v = min(n, int(math.floor(fraction * n + 0.5)))
            want["train"] += doc[:n - v]
            want["val"] += doc[n - v:]
            ncut += 0 < v < n
    return want, ncut


# ---------------------------------------------------------------- checkpoint.md

DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
              "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


def read_safetensors(path):
    """(metadata, [(name, dtype, shape, bytes)] in offset order)."""
    data = open(path, "rb").read()
    need(len(data) >= 8, "%s: truncated" % path)
    (n,) = struct.unpack_from("<Q", data)
    need(n <= 100000000, "%s: header over 100,000,000 bytes" % path)
    need(8 + n <= len(data), "%s: header runs past the end" % path)
    raw = data[8:8 + n]
    need(b"\0" not in raw, "%s: NUL in header" % path)
    pairs = json.loads(raw.decode("utf-8"), object_pairs_hook=lambda kv: kv)
    names = [k for k, _ in pairs]
    need(len(names) == len(set(names)), "%s: duplicate names" % path)
    meta, tensors = {}, []
    body = data[8 + n:]
    for name, info in pairs:
        info = dict(info)
        if name == "__metadata__":
            meta = info
            need(all(isinstance(v, str) for v in meta.values()), "metadata values must be strings")
            continue
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        need(dt in DTYPE_SIZE, "%s: %s: dtype %s" % (path, name, dt))
        size = DTYPE_SIZE[dt]
        for d in shape:
            size *= d
        need(e - b == size and 0 <= b <= e, "%s: %s: offsets do not match the shape" % (path, name))
        tensors.append((name, dt, list(shape), b, e))
    tensors.sort(key=lambda t: (t[3], t[4]))
    pos = 0
    for name, dt, shape, b, e in tensors:
        need(b == pos, "%s: %s: gap or overlap" % (path, name))
        pos = e
    need(pos == len(body), "%s: data section not tiled exactly" % path)
    return meta, [(name, dt, shape, body[b:e]) for name, dt, shape, b, e in tensors], data


def write_safetensors(path, tensors, meta):
    """tensors: [(name, shape, float list or bytes)], F32, in the given order."""
    header, blobs, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, shape, vals in tensors:
        blob = vals if isinstance(vals, bytes) else struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def expected_tensors(cfg):
    V, D, F, H, K = (cfg[k] for k in ("vocab_size", "hidden_size", "intermediate_size",
                                      "num_attention_heads", "num_key_value_heads"))
    d = D // H
    out = [("model.embed_tokens.weight", [V, D])]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        out += [(p + "input_layernorm.weight", [D]), (p + "self_attn.q_proj.weight", [H * d, D]),
                (p + "self_attn.k_proj.weight", [K * d, D]), (p + "self_attn.v_proj.weight", [K * d, D]),
                (p + "self_attn.o_proj.weight", [D, H * d]), (p + "post_attention_layernorm.weight", [D]),
                (p + "mlp.gate_proj.weight", [F, D]), (p + "mlp.up_proj.weight", [F, D]),
                (p + "mlp.down_proj.weight", [D, F])]
    out.append(("model.norm.weight", [D]))
    if not cfg["tie_word_embeddings"]:
        out.append(("lm_head.weight", [V, D]))
    return out


CK = b'"checksum": "'


def state_checksum_ok(raw):
    """True/False when the file has a checksum member, None when not."""
    state = json.loads(raw)
    at = raw.rfind(CK)
    if "checksum" not in state:
        return None
    need(at >= 0, "checksum member not found in the raw bytes")
    digits = raw[at + len(CK):at + len(CK) + 16]
    need(re.fullmatch(rb'"[ \t\r\n]*\}[ \t\r\n]*', raw[at + len(CK) + 16:]) is not None,
         "checksum is not the last member")
    need(re.fullmatch(rb"[0-9a-f]{16}", digits) is not None, "checksum not 16 lowercase hex digits")
    need(state["checksum"] == digits.decode(), "checksum member is not the last occurrence")
    return int(digits, 16) == h(raw[:at + len(CK)])


def seal_state(obj):
    """trainer-state.json's bytes for obj (without checksum), with its checksum last."""
    body = json.dumps(obj, indent=2)
    assert body.endswith("\n}")
    head = (body[:-2] + ',\n  "checksum": "').encode()
    return head + b"%016x" % h(head) + b'"\n}\n'


def check_step_dir(d, vocab_path=None, lm=False):
    """Every rule of checkpoint.md; with lm, also what lm's writer always does
    (tensor order, F32, metadata, optimizer file, config members)."""
    files = sorted(os.listdir(d))
    raw = open(os.path.join(d, "trainer-state.json"), "rb").read()
    need(b"\0" not in raw, "NUL in trainer-state.json")
    st = json.loads(raw)
    need(state_checksum_ok(raw) is not False, "trainer-state.json: checksum mismatch")
    if lm:  # what lm writes: the checksum, then exactly '"', LF, '}', LF
        need(raw.endswith(b'"\n}\n') and "checksum" in st, "lm writes the checksum last")
    need(st["format"] == "lm-trainer-state" and st["version"] == 1, "format/version")
    for k in ("step", "tokens_seen", "eot_id"):
        need(isinstance(st[k], int) and st[k] >= 0, k)
    m = re.fullmatch(r"step-([0-9]+)", os.path.basename(os.path.normpath(d)))
    need(m is None or int(m.group(1)) == st["step"], "step differs from the directory's name")
    need(isinstance(st["elapsed_seconds"], (int, float)), "elapsed_seconds")
    need(re.fullmatch("[0-9a-f]{16}", st["vocab_id"]) is not None, "vocab_id")
    for f in ("model.safetensors", "config.json", "tok.bpe"):
        need(f in st["files"], "files lacks " + f)
    if "optimizer.safetensors" in files:
        need("optimizer.safetensors" in st["files"] and isinstance(st["adam_step"], int), "optimizer")
    for f, hx in st["files"].items():
        need("/" not in f and f not in (".", ".."), "file name " + f)
        need(os.path.isfile(os.path.join(d, f)), f + ": missing (listed)")
        need(re.fullmatch("[0-9a-f]{16}", hx) is not None, "hash of " + f)
        need(h(open(os.path.join(d, f), "rb").read()) == int(hx, 16), "%s: hash mismatch" % f)
    v = read_vocab(os.path.join(d, "tok.bpe"))
    need("%016x" % v.identity == st["vocab_id"], "vocab_id != tok.bpe's identity")
    need(st["eot_id"] == v.eot_id, "eot_id")
    if vocab_path:
        need(open(vocab_path, "rb").read() == open(os.path.join(d, "tok.bpe"), "rb").read(), "tok.bpe != vocab")
    cfg = json.load(open(os.path.join(d, "config.json")))
    for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "max_position_embeddings"):
        need(isinstance(cfg.get(k), int) and cfg[k] > 0, "config.json: " + k)
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    cfg.setdefault("tie_word_embeddings", False)
    need(cfg["vocab_size"] == len(v.entries), "config vocab_size")
    need(cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"]) * cfg["num_attention_heads"]
         == cfg["hidden_size"], "head_dim")
    need(cfg.get("model_type", "llama") == "llama" and cfg.get("hidden_act", "silu") == "silu" and
         cfg.get("rope_scaling") is None and not cfg.get("attention_bias") and not cfg.get("mlp_bias"),
         "config values lm refuses")
    if lm:
        need(cfg["architectures"] == ["LlamaForCausalLM"] and cfg["model_type"] == "llama", "config kind")
        need(cfg["bos_token_id"] == cfg["eos_token_id"] == v.eot_id, "config bos/eos")
        need(cfg["torch_dtype"] == "float32" and cfg["attention_bias"] is False and cfg["mlp_bias"] is False
             and "rope_scaling" in cfg and cfg["hidden_act"] == "silu", "config constants")
        for k in ("rms_norm_eps", "rope_theta"):
            need(isinstance(cfg[k], (int, float)), k)
    meta, tensors, _ = read_safetensors(os.path.join(d, "model.safetensors"))
    want = expected_tensors(cfg)
    need(sorted((n, s) for n, _, s, _ in tensors) == sorted(want), "model tensors differ from the spec's list")
    need(all(dt in ("F32", "BF16", "F16", "F64") for _, dt, _, _ in tensors), "model dtype")
    for name, dt, _, blob in tensors:  # no NaN or infinity
        if dt == "BF16":
            blob, dt = b"".join(b"\0\0" + blob[i:i + 2] for i in range(0, len(blob), 2)), "F32"
        code = {"F32": "f", "F64": "d", "F16": "e"}[dt]
        vals = struct.unpack("<%d%s" % (len(blob) // struct.calcsize(code), code), blob)
        need(all(v - v == 0 for v in vals), name + ": NaN or infinity")
    if lm:
        need(meta.get("format") == "pt", "model metadata")
        need([(n, s) for n, _, s, _ in tensors] == want, "model tensors not in the spec's order")
        need(all(dt == "F32" for _, dt, _, _ in tensors), "model dtype")
        need("optimizer.safetensors" in files and "adam_step" in st, "lm-train writes the optimizer state")
    if "optimizer.safetensors" in files:
        meta, otensors, _ = read_safetensors(os.path.join(d, "optimizer.safetensors"))
        need(meta.get("format") == "lm-adamw" and meta.get("step") == str(int(meta.get("step"))), "opt meta")
        wo = [("exp_avg." + n, s) for n, s in want] + [("exp_avg_sq." + n, s) for n, s in want]
        need([(n, s) for n, _, s, _ in otensors] == wo, "optimizer tensors")
        need(st["adam_step"] == int(meta["step"]), "adam_step != optimizer step")
    return st, cfg, tensors


def build_step_dir(d, vocab_path, seed=1, untied=False, kv_heads=4, layers=2, D=64, H=4, F=192, ctx=32,
                   step=7, state_extra=None, with_checksum=True, values=None):
    """A step directory from the spec: random weights, or values(name, shape)
    giving a tensor's floats (row-major)."""
    v = read_vocab(vocab_path)
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": len(v.entries),
           "hidden_size": D, "intermediate_size": F, "num_hidden_layers": layers, "num_attention_heads": H,
           "num_key_value_heads": kv_heads, "head_dim": D // H, "hidden_act": "silu",
           "max_position_embeddings": ctx, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None,
           "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": not untied,
           "torch_dtype": "float32", "bos_token_id": v.eot_id, "eos_token_id": v.eot_id}
    rnd = random.Random(seed)
    tensors = []
    for name, shape in expected_tensors(cfg):
        n = 1
        for s in shape:
            n *= s
        if values is not None:
            vals = values(name, shape)
        elif len(shape) == 1:
            vals = [1.0] * n
        else:
            vals = [rnd.gauss(0, 0.5 if "embed" in name or "lm_head" in name else 0.1) for _ in range(n)]
        tensors.append((name, shape, vals))
    write_safetensors(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(d, "tok.bpe"), "wb") as f:
        f.write(open(vocab_path, "rb").read())
    files = {n: "%016x" % h(open(os.path.join(d, n), "rb").read())
             for n in ("model.safetensors", "config.json", "tok.bpe")}
    st = {"format": "lm-trainer-state", "version": 1, "step": step, "tokens_seen": step * 128,
          "elapsed_seconds": 1.5, "vocab_id": "%016x" % v.identity, "eot_id": v.eot_id, "files": files}
    st.update(state_extra or {})
    raw = seal_state(st) if with_checksum else (json.dumps(st, indent=2) + "\n").encode()
    with open(os.path.join(d, "trainer-state.json"), "wb") as f:
        f.write(raw)
    return cfg


# ---------------------------------------------------------------- command line

def main(argv):
    cmd = argv[1]
    if cmd == "vocab-dump":
        v = read_vocab(argv[2])
        data = open(argv[2], "rb").read()
        print("identity %016x" % v.identity)
        print("n_ids %d eot_id %d pattern_kind %d pattern_len %d" % (len(v.entries), v.eot_id, v.pattern_kind,
                                                                   len(v.pattern)))
        if v.pattern_kind in PATTERNS:
            print("pattern", "canonical" if v.pattern.decode() == PATTERNS[v.pattern_kind] else "other")
        kinds = [0] * 5
        for k, _ in v.entries:
            kinds[k] += 1
        print("unused %d byte %d merge %d special %d literal %d" % tuple(kinds))
        print("rewrite", "identical" if v.to_bytes() == data else "differs")
        for i, (k, p) in enumerate(v.entries):
            if len(argv) > 3:
                print(i, k, p if k != KIND_SPECIAL else p.decode())
    elif cmd == "vocab-encode":
        v = read_vocab(argv[2])
        text = open(argv[3], "rb").read()
        print(" ".join(map(str, v.encode(text, "--allow-special" in argv))))
    elif cmd == "vocab-decode":
        v = read_vocab(argv[2])
        ids = [int(x) for x in open(argv[3]).read().split()]
        sys.stdout.buffer.write(v.decode(ids))
    elif cmd == "vocab-write":
        spec = json.load(open(argv[3]))
        entries = []
        for e in spec["entries"]:
            k = e[0]
            p = None if k == 0 else e[1] if k == 1 else tuple(e[1:3]) if k == 2 else e[1].encode("latin-1")
            entries.append((k, p))
        pattern = spec.get("pattern", PATTERNS.get(spec["pattern_kind"], "")).encode()
        v = Vocab(spec["pattern_kind"], pattern, entries, spec["eot_id"])
        open(argv[2], "wb").write(v.to_bytes())
        print("%016x" % v.identity)
    elif cmd == "vocab-rewrite":
        v = read_vocab(argv[2])
        open(argv[3], "wb").write(v.to_bytes())
    elif cmd == "tokens-read":
        for hd, ids in read_streams(open(argv[2], "rb").read()):
            print("stream vocab_size %d eot %d identity %016x width %d tokens %d" % (
                hd["vocab_size"], hd["eot_id"], hd["identity"], hd["width"], len(ids)))
            print(" ".join(map(str, ids)))
    elif cmd == "tokens-write":
        v = read_vocab(argv[3])
        ids = [int(x) for x in open(argv[4]).read().split()]
        chunk = int(argv[argv.index("--chunk") + 1]) if "--chunk" in argv else 65536
        open(argv[2], "wb").write(stream_bytes(ids, len(v.entries), v.eot_id, v.identity, chunk))
    elif cmd == "dataset-read":
        tokens, docs, m = read_dataset(argv[2])
        for sp in ("train", "val"):
            print(sp, len(tokens[sp]), docs[sp])
        if len(argv) > 3:
            streams = read_streams(open(argv[3], "rb").read())
            ids = [t for _, s in streams for t in s]
            eot = streams[0][0]["eot_id"]
            eot = -1 if eot == NO_EOT else eot
            if "--split-rule" in argv:  # the one writer's split, as its manifest entry records it
                k = argv.index("--split-rule")
                f, seed = float(argv[k + 1]), int(argv[k + 2])
                need(len(m["writers"]) == 1, "--split-rule reads a dataset of one writer")
                w = m["writers"][0]
                need(w["val_fraction"] == f and w["seed"] == seed, "the writer's val_fraction or seed")
                want, _ = split_rule(ids, eot, f, seed, w.get("val_cut"))
                need(want == tokens, "the split differs from manifest.md's rule")
            else:
                need(tokens["train"] == ids and not tokens["val"], "the train split is not the input")
            print("matches")
    elif cmd == "ckpt-check":
        args = [a for a in argv[2:] if a != "--lm"]
        st, cfg, tensors = check_step_dir(args[0], args[1] if len(args) > 1 else None, "--lm" in argv)
        print("step %d tensors %d layers %d vocab %d tied %s" % (st["step"], len(tensors),
                                                                cfg["num_hidden_layers"], cfg["vocab_size"],
                                                                cfg["tie_word_embeddings"]))
    elif cmd == "ckpt-build":
        kw = {}
        if "--seed" in argv:
            kw["seed"] = int(argv[argv.index("--seed") + 1])
        if "--kv-heads" in argv:
            kw["kv_heads"] = int(argv[argv.index("--kv-heads") + 1])
        if "--untied" in argv:
            kw["untied"] = True
        if "--no-checksum" in argv:
            kw["with_checksum"] = False
        build_step_dir(argv[2], argv[3], **kw)
    elif cmd == "state-reseal":
        raw = open(argv[2], "rb").read()
        st = json.loads(raw)
        st.pop("checksum", None)
        open(argv[2], "wb").write(seal_state(st))
    else:
        raise SystemExit("lmspec: unknown command " + cmd)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SpecError as e:
        sys.stderr.write("lmspec: %s\n" % e)
        sys.exit(1)
