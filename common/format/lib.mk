# libformat: one reader/writer pair per file format.
LIB_format_DEPS := format util
