# backend/: the Backend interface, headers only (no library): cpu/ and cuda/
# implement it, engine/ chooses one.
