#!/usr/bin/env python3
"""ggufspec.py: a GGUF version 3 reader written from ggml's docs/gguf.md, and
a check of what lm-export --gguf must write for a step directory, derived
from docs/export.md, llama.cpp's llama architecture and its
convert_hf_to_gguf.py (not from lm's C++). Standard library only, plus
lmspec.py for the checkpoint's own files.

  ggufspec.py dump FILE                  header, keys and tensors
  ggufspec.py check FILE STEP_DIR TYPE   every key, type, shape and tensor byte
                                         (TYPE: f32, f16, bf16 or q8_0)
  ggufspec.py gguf-package FILE [STEP_DIR]
                                         the same file read by the gguf package;
                                         with STEP_DIR, checked by its tables
                                         (a dev check; "SKIP" without it)

Errors: a line "ggufspec: ..." on stderr and exit status 1.
"""
import json
import math
import os
import struct
import sys

import lmspec
from lmspec import need

# ggml's docs/gguf.md: value types, and the tensor types lm writes.
VALUE = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
TYPE_NAMES = {0: "F32", 1: "F16", 8: "Q8_0", 30: "BF16"}
BLOCK = {0: (1, 4), 1: (1, 2), 8: (32, 34), 30: (1, 2)}  # elements, bytes per block


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        need(self.p + n <= len(self.d), "truncated at byte %d" % self.p)
        self.p += n
        return self.d[self.p - n:self.p]

    def num(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return self.take(self.num("<Q")).decode("utf-8")

    def value(self, t):
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.num("<I"), self.num("<Q")
            return (et, [self.value(et) for _ in range(n)])
        need(t in VALUE, "unknown value type %d" % t)
        return self.num(VALUE[t])


def read_gguf(path):
    """{"kv": {key: (type, value)}, "tensors": [(name, dims outer first, type, bytes)]}."""
    data = open(path, "rb").read()
    r = Reader(data)
    need(r.take(4) == b"GGUF", "%s: not GGUF (magic)" % path)
    need(r.num("<I") == 3, "%s: version is not 3" % path)
    n_t, n_kv = r.num("<Q"), r.num("<Q")
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        t = r.num("<I")
        need(k not in kv, "key %s twice" % k)
        kv[k] = (t, r.value(t))
    align = kv.get("general.alignment", (4, 32))[1]
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.num("<I")
        ne = [r.num("<Q") for _ in range(nd)]
        t, off = r.num("<I"), r.num("<Q")
        need(t in BLOCK, "%s: ggml type %d" % (name, t))
        need(off % align == 0, "%s: offset %d not aligned" % (name, off))
        infos.append((name, ne, t, off))
    start = (r.p + align - 1) // align * align
    need(all(b == 0 for b in data[r.p:start]), "padding before the data is not zero")
    tensors, spans = [], []
    for name, ne, t, off in infos:
        elems, nbytes = BLOCK[t]
        n = 1
        for x in ne:
            n *= x
        need(ne[0] % elems == 0, "%s: rows are no whole blocks" % name)
        size = n // elems * nbytes
        need(start + off + size <= len(data), "%s: runs past the end of the file" % name)
        spans.append((off, off + size, name))
        tensors.append((name, list(reversed(ne)), t, data[start + off:start + off + size]))
    spans.sort()
    for a, b in zip(spans, spans[1:]):
        need(a[1] <= b[0], "%s and %s overlap" % (a[2], b[2]))
    return {"kv": kv, "tensors": tensors, "data_start": start, "size": len(data)}


# ---------------------------------------------------------------- numbers

def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bf16_bits(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    return (u + 0x7FFF + ((u >> 16) & 1)) >> 16


def roundf(x):  # C's roundf: half away from zero
    return math.copysign(math.floor(abs(x) + 0.5), x)


def encode(vals, t):
    """lm's floats as ggml type t, from the definitions (numpy's float16 is
    Python's struct 'e'; bf16 rounds to nearest even; Q8_0 is
    quantize_row_q8_0_ref computed in float32)."""
    if t == 0:
        return struct.pack("<%df" % len(vals), *vals)
    if t == 1:
        return struct.pack("<%de" % len(vals), *vals)
    if t == 30:
        return struct.pack("<%dH" % len(vals), *[bf16_bits(v) for v in vals])
    out = bytearray()
    for b in range(0, len(vals), 32):
        blk = vals[b:b + 32]
        d = f32(max(abs(v) for v in blk) / 127)
        i = f32(1 / d) if d else 0.0
        out += struct.pack("<e", d) + struct.pack("<32b", *[int(roundf(f32(v * i))) for v in blk])
    return bytes(out)


def decode(blob, t):
    if t == 0:
        return list(struct.unpack("<%df" % (len(blob) // 4), blob))
    if t == 1:
        return list(struct.unpack("<%de" % (len(blob) // 2), blob))
    if t == 30:
        return [struct.unpack("<f", struct.pack("<I", u << 16))[0]
                for u in struct.unpack("<%dH" % (len(blob) // 2), blob)]
    out = []
    for b in range(0, len(blob), 34):
        d = struct.unpack("<e", blob[b:b + 2])[0]
        out += [d * q for q in struct.unpack("<32b", blob[b + 2:b + 34])]
    return out


# ---------------------------------------------------------------- llama

def llama_name(hf):
    """transformers' Llama tensor name -> llama.cpp's (gguf-py's tensor map)."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    _, _, i, rest = hf.split(".", 3)
    part = {"input_layernorm.weight": "attn_norm", "self_attn.q_proj.weight": "attn_q",
            "self_attn.k_proj.weight": "attn_k", "self_attn.v_proj.weight": "attn_v",
            "self_attn.o_proj.weight": "attn_output", "post_attention_layernorm.weight": "ffn_norm",
            "mlp.gate_proj.weight": "ffn_gate", "mlp.up_proj.weight": "ffn_up",
            "mlp.down_proj.weight": "ffn_down"}[rest]
    return "blk.%s.%s.weight" % (i, part)


def permute(rows, heads):
    """convert_hf_to_gguf.py LlamaModel.permute: reshape(heads, 2, d/2, in)
    .swapaxes(1, 2) on a list of rows."""
    d = len(rows) // heads
    out = []
    for h in range(heads):
        for i in range(d // 2):
            for j in range(2):
                out.append(rows[h * d + j * (d // 2) + i])
    return out


def rope_half(x, pos, base):  # transformers: x_i with x_{i + d/2}
    d = len(x)
    out = list(x)
    for i in range(d // 2):
        th = pos * base ** (-2 * i / d)
        c, s = math.cos(th), math.sin(th)
        out[i] = x[i] * c - x[i + d // 2] * s
        out[i + d // 2] = x[i + d // 2] * c + x[i] * s
    return out


def rope_adjacent(x, pos, base):  # ggml's rope mode 0 (LLAMA_ROPE_TYPE_NORM): x_{2i} with x_{2i+1}
    d = len(x)
    out = list(x)
    for i in range(d // 2):
        th = pos * base ** (-2 * i / d)
        c, s = math.cos(th), math.sin(th)
        out[2 * i] = x[2 * i] * c - x[2 * i + 1] * s
        out[2 * i + 1] = x[2 * i + 1] * c + x[2 * i] * s
    return out


def matvec(rows, x):
    return [sum(a * b for a, b in zip(r, x)) for r in rows]


def check_rotary(q_hf, k_hf, q_gg, k_gg, H, K, base):
    """Attention scores of head 0 of q with head 0 of k at a few positions:
    transformers' rotate-half on the checkpoint's rows and llama.cpp's
    adjacent pairs on the GGUF's rows must agree."""
    D = len(q_hf[0])
    d = len(q_hf) // H
    x = [math.sin(1.7 * i + 0.3) for i in range(D)]
    y = [math.cos(0.9 * i + 0.1) for i in range(D)]
    for pq, pk in ((0, 0), (5, 2), (31, 17)):
        a = rope_half(matvec(q_hf[:d], x), pq, base)
        b = rope_half(matvec(k_hf[:d], y), pk, base)
        c = rope_adjacent(matvec(q_gg[:d], x), pq, base)
        e = rope_adjacent(matvec(k_gg[:d], y), pk, base)
        s1, s2 = sum(u * v for u, v in zip(a, b)), sum(u * v for u, v in zip(c, e))
        need(abs(s1 - s2) <= 1e-4 * (1 + abs(s1)), "rotary: score %g (transformers) vs %g (llama.cpp)" % (s1, s2))


def byte_level(bs):
    """GPT-2's bytes_to_unicode."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return "".join(table[b] for b in bs)


def last_merge(v, tok):
    """The pair tiktoken's loop joins last on a token's bytes, without the
    whole-token lookup (None when the loop does not end in the token)."""
    parts, last = v.merge_loop(tok)
    return last if len(parts) == 1 else None


def check_tokenizer(kv, v, pre):
    n = len(v.entries)
    texts, types = [], []
    for i, (k, p) in enumerate(v.entries):
        tok = v.tokens[i]
        if k == lmspec.KIND_UNUSED:
            texts.append("[PAD%d]" % i)
            types.append(5)
        elif k == lmspec.KIND_SPECIAL:
            texts.append(tok.decode())
            types.append(3)
        else:
            texts.append(byte_level(tok))
            types.append(1)
    need(kv["tokenizer.ggml.model"] == (STRING, "gpt2"), "tokenizer.ggml.model")
    need(kv["tokenizer.ggml.pre"] == (STRING, pre), "tokenizer.ggml.pre %r" % (kv["tokenizer.ggml.pre"],))
    need(kv["tokenizer.ggml.tokens"] == (ARRAY, (STRING, texts)), "tokenizer.ggml.tokens")
    need(kv["tokenizer.ggml.token_type"] == (ARRAY, (5, types)), "tokenizer.ggml.token_type")
    merges = []
    for i, (k, p) in enumerate(v.entries):
        if k in (lmspec.KIND_MERGE, lmspec.KIND_LITERAL):
            lm = last_merge(v, v.tokens[i])
            if lm:
                merges.append(byte_level(lm[0]) + " " + byte_level(lm[1]))
    need(kv["tokenizer.ggml.merges"] == (ARRAY, (STRING, merges)),
         "tokenizer.ggml.merges (%d listed, %d expected)" % (len(kv["tokenizer.ggml.merges"][1][1]), len(merges)))
    for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        need(kv[key] == (4, v.eot_id), key)
    need(kv["tokenizer.ggml.add_bos_token"] == (7, True), "add_bos_token")
    need(kv["tokenizer.ggml.add_eos_token"] == (7, False), "add_eos_token")
    return len(merges), n


PRE = {1: "gpt-2", 2: "llama-bpe", 3: "gpt-4o"}
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7, "bf16": 32}
GGML_TYPE = {"f32": 0, "f16": 1, "q8_0": 8, "bf16": 30}


def check(path, step_dir, typ):
    g = read_gguf(path)
    kv = g["kv"]
    cfg = json.load(open(os.path.join(step_dir, "config.json")))
    v = lmspec.read_vocab(os.path.join(step_dir, "tok.bpe"))
    H, K, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    want = {
        "general.architecture": (STRING, "llama"), "general.file_type": (4, FILE_TYPE[typ]),
        "general.quantization_version": (4, 2), "llama.vocab_size": (4, cfg["vocab_size"]),
        "llama.context_length": (4, cfg["max_position_embeddings"]), "llama.embedding_length": (4, D),
        "llama.block_count": (4, cfg["num_hidden_layers"]), "llama.feed_forward_length": (4, cfg["intermediate_size"]),
        "llama.attention.head_count": (4, H), "llama.attention.head_count_kv": (4, K),
        "llama.attention.key_length": (4, D // H), "llama.attention.value_length": (4, D // H),
        "llama.rope.dimension_count": (4, D // H), "llama.rope.freq_base": (6, f32(cfg["rope_theta"])),
        "llama.attention.layer_norm_rms_epsilon": (6, f32(cfg["rms_norm_eps"])),
    }
    for k, val in want.items():
        need(kv.get(k) == val, "%s is %r, expected %r" % (k, kv.get(k), val))
    need(kv["general.name"][0] == STRING, "general.name")
    pattern = v.pattern_kind
    if pattern == 4:
        pattern = {p.encode(): k for k, p in lmspec.PATTERNS.items()}.get(v.pattern)
    n_merges, n_tokens = check_tokenizer(kv, v, PRE[pattern])
    extra = set(kv) - set(want) - {"general.name"} - {k for k in kv if k.startswith("tokenizer.ggml.")}
    need(not extra, "keys nobody asked for: %s" % sorted(extra))
    _, st, _ = lmspec.read_safetensors(os.path.join(step_dir, "model.safetensors"))
    need([t[0] for t in g["tensors"]] == [llama_name(n) for n, _, _, _ in st], "tensor names or order")
    rows_of = {}
    for (name, dims, t, blob), (hf, dt, shape, raw) in zip(g["tensors"], st):
        need(dims == shape, "%s: shape %s, the checkpoint's %s" % (name, dims, shape))
        vals = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        want_t = 0 if len(shape) == 1 else GGML_TYPE[typ]
        if want_t == 8 and shape[-1] % 32:
            want_t = 1  # convert_hf_to_gguf.py's fallback
        need(t == want_t, "%s: type %s, expected %s" % (name, TYPE_NAMES[t], TYPE_NAMES[want_t]))
        rows = [vals[r * shape[-1]:(r + 1) * shape[-1]] for r in range(len(vals) // shape[-1])]
        if ".attn_q." in name or ".attn_k." in name:
            rows = permute(rows, H if ".attn_q." in name else K)
        flat = [x for r in rows for x in r]
        need(blob == encode(flat, t), "%s: bytes differ from the checkpoint's, %s" % (name, TYPE_NAMES[t]))
        rows_of[hf] = ([vals[r * shape[-1]:(r + 1) * shape[-1]] for r in range(len(vals) // shape[-1])],
                       [decode(blob, t)[r * shape[-1]:(r + 1) * shape[-1]] for r in range(len(rows))])
    base = cfg["rope_theta"]
    for i in range(cfg["num_hidden_layers"]):
        q, k = rows_of["model.layers.%d.self_attn.q_proj.weight" % i], rows_of["model.layers.%d.self_attn.k_proj.weight" % i]
        if typ == "f32":
            check_rotary(q[0], k[0], q[1], k[1], H, K, base)
    print("ok: %d keys, %d tensors (%s), %d tokens, %d merges, pre %s" % (
        len(kv), len(g["tensors"]), typ, n_tokens, n_merges, PRE[pattern]))


def gguf_package(path, step_dir=None):
    """The file as the gguf package (llama.cpp's gguf-py) reads it: the same
    keys, tensors and bytes as read_gguf. With step_dir, also by the
    package's own tables: every key one of gguf.Keys, every tensor name one
    of its llama architecture's (all those a llama model needs present), and
    each tensor, dequantized by gguf.quants, the checkpoint's values (q and k
    permuted as convert_hf_to_gguf.py does) within the type's rounding."""
    try:
        import gguf
        import numpy as np
    except ImportError:
        print("SKIP gguf package not installed")
        return
    r = gguf.GGUFReader(path)
    mine = read_gguf(path)
    names = [t.name for t in r.tensors]
    need(names == [t[0] for t in mine["tensors"]], "gguf package: tensor names")
    for t, m in zip(r.tensors, mine["tensors"]):
        need(list(reversed([int(x) for x in t.shape])) == m[1], "gguf package: %s shape" % t.name)
        need(int(t.tensor_type) == m[2], "gguf package: %s type" % t.name)
        need(bytes(t.data.tobytes()) == m[3], "gguf package: %s bytes" % t.name)
    for k, (typ, val) in mine["kv"].items():
        f = r.fields[k]
        if typ == STRING:
            need(f.contents() == val, "gguf package: %s" % k)
        elif typ != ARRAY:
            need(f.contents() == val or abs(f.contents() - val) < 1e-12, "gguf package: %s" % k)
        else:
            need(list(f.contents()) == list(val[1]), "gguf package: %s" % k)
    print("ok: the gguf package reads %d keys and %d tensors alike" % (len(mine["kv"]), len(names)))
    if step_dir is None:
        return
    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA]
    cfg = json.load(open(os.path.join(step_dir, "config.json")))
    L, H, K = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    need(r.fields["general.architecture"].contents() == arch, "gguf package: general.architecture")
    keys = set()
    for group in vars(gguf.Keys).values():
        for v in vars(group).values() if isinstance(group, type) else ():
            if isinstance(v, str):
                keys.add(v.replace("{arch}", arch))
    unknown = sorted(set(r.fields) - keys - {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"})
    need(not unknown, "gguf package: keys that are no gguf.Keys: %s" % unknown)
    M = gguf.MODEL_TENSOR
    known = {}
    for t in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.LLAMA]:
        pat = gguf.TENSOR_NAMES[t]
        for i in range(L) if "{bid}" in pat else [None]:
            known[pat.format(bid=i) + ".weight"] = t
    need(set(names) <= set(known), "gguf package: not llama tensors: %s" % sorted(set(names) - set(known)))
    required = {M.TOKEN_EMBD, M.OUTPUT_NORM, M.ATTN_NORM, M.ATTN_Q, M.ATTN_K, M.ATTN_V, M.ATTN_OUT, M.FFN_NORM,
                M.FFN_GATE, M.FFN_UP, M.FFN_DOWN}
    if not cfg["tie_word_embeddings"]:
        required.add(M.OUTPUT)
    missing = sorted(n for n, t in known.items() if t in required and n not in names)
    need(not missing, "gguf package: a llama model needs %s" % missing)
    _, st, _ = lmspec.read_safetensors(os.path.join(step_dir, "model.safetensors"))
    by_name = {llama_name(hf): (shape, raw) for hf, _, shape, raw in st}
    Q = gguf.GGMLQuantizationType
    worst = {}
    for t in r.tensors:
        shape, raw = by_name[t.name]
        w = np.frombuffer(raw, dtype="<f4").reshape(shape)
        if ".attn_q." in t.name or ".attn_k." in t.name:
            n_head = H if ".attn_q." in t.name else K
            w = w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        got = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(shape)
        qt = Q(int(t.tensor_type))
        if qt == Q.F32:
            bound = np.zeros_like(w)
        elif qt == Q.F16:  # the nearest half: within half a step of 2^-10 relative (2^-24 below normal)
            bound = np.maximum(np.abs(w) * 2.0 ** -11, 2.0 ** -25)
        elif qt == Q.BF16:
            bound = np.abs(w) * 2.0 ** -8
        else:  # Q8_0: half a step of max|block|/127, with that scale rounded to F16
            blocks = np.abs(w).reshape(-1, 32).max(axis=1) / 127
            bound = np.repeat(blocks * (0.5 + 127 * 2.0 ** -11) * 1.0001, 32).reshape(w.shape)
        err = np.abs(got - w)
        need(bool((err <= bound).all()), "gguf package: %s dequantized (%s) is off the checkpoint's by %g" % (
            t.name, qt.name, float(err.max())))
        worst[qt.name] = max(worst.get(qt.name, 0.0), float(err.max()))
    print("ok: gguf.Keys names every key, llama's tensor map every tensor; dequantized, the checkpoint's "
          "values (largest difference %s)" % ", ".join("%s %.2g" % kv for kv in sorted(worst.items())))


def main(argv):
    if argv[1] == "dump":
        g = read_gguf(argv[2])
        for k, (t, val) in g["kv"].items():
            shown = "[%d items]" % len(val[1]) if t == ARRAY else repr(val)
            print("%s %d %s" % (k, t, shown))
        for name, dims, t, blob in g["tensors"]:
            print("tensor %s %s %s %d" % (name, dims, TYPE_NAMES[t], len(blob)))
    elif argv[1] == "check":
        check(argv[2], argv[3], argv[4])
    elif argv[1] == "gguf-package":
        gguf_package(argv[2], argv[3] if len(argv) > 3 else None)
    else:
        raise SystemExit("ggufspec: unknown command " + argv[1])


if __name__ == "__main__":
    try:
        main(sys.argv)
    except lmspec.SpecError as e:
        sys.stderr.write("ggufspec: %s\n" % e)
        sys.exit(1)
