# state_helpers.bash: edits a checkpoint's trainer-state.json for tests of the
# checks behind its checksum, resealing it as docs/formats/checkpoint.md says:
# the last member "checksum" is XXH3-64 of every byte before its value.

# edit_state FILE SED_EXPR: applies the sed expression, then reseals FILE.
edit_state() {
  sed -i "$2" "$1"
  python3 - "$1" <<'PY'
import ctypes, sys
xx = ctypes.CDLL("libxxhash.so.0")
xx.XXH3_64bits.restype = ctypes.c_uint64
xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
path = sys.argv[1]
data = open(path, "rb").read()
key = b'"checksum": "'
end = data.rindex(key) + len(key)
digest = b"%016x" % xx.XXH3_64bits(data[:end], end)
open(path, "wb").write(data[:end] + digest + data[end + 16:])
PY
}
