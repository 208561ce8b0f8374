#!/usr/bin/env python3
"""tokenize_unicode_probe.py: dev tool that regenerates the ranges in
common/text/unicode_newer.inc. It asks tiktoken's regex engine (Rust
regex-syntax) which code points that Unicode 14 (Python 3.11's unicodedata, the
version PCRE2 10.42 knows) leaves unassigned are \p{L}, \p{N}, \p{M}, or in
o200k's two letter sets, and prints "CLASS FIRST-LAST ..." lines. Each probe
encodes "#" + the character with a vocabulary whose only merges spell "#"+c,
under the pattern "#CLASS|[^#]|#": one token back means the class matched.
Skips without tiktoken. Takes about a minute.
"""
import sys
try:
    import tiktoken
except ImportError:
    print("SKIP tiktoken not installed")
    sys.exit(0)
# Probe tiktoken's regex engine (Rust regex-syntax) for code points that
# Python's unicodedata (Unicode 14, like PCRE2 10.42) calls unassigned, per class.
import unicodedata
classes = {
 'L': r"\p{L}", 'N': r"\p{N}", 'M': r"\p{M}",
 'U': r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", 'W': r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]",
}
cands = [cp for cp in range(0x80, 0x110000) if not (0xD800 <= cp <= 0xDFFF) and unicodedata.category(chr(cp)) == 'Cn'
         and (cp < 0x40000 or 0xE0000 <= cp < 0xF0000)]
print(len(cands), file=sys.stderr)
ranks = {bytes([i]): i for i in range(256)}
for cp in cands:
    b = b'#' + chr(cp).encode()
    for k in range(2, len(b) + 1):
        if b[:k] not in ranks: ranks[b[:k]] = len(ranks)
out = {}
for name, cls in classes.items():
    enc = tiktoken.Encoding(name='p'+name, pat_str='#' + cls + '|[^#]|#', mergeable_ranks=ranks, special_tokens={})
    res = enc.encode_ordinary_batch(['#' + chr(cp) for cp in cands], num_threads=2)
    out[name] = [cp for cp, r in zip(cands, res) if len(r) == 1]
    print(name, len(out[name]), file=sys.stderr)
# ranges
for name, cps in out.items():
    rs = []
    for cp in cps:
        if rs and rs[-1][1] + 1 == cp: rs[-1][1] = cp
        else: rs.append([cp, cp])
    print(name, ' '.join('%X-%X' % (a, b) for a, b in rs))
