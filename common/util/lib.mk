# libutil: errors, files, hashing, codecs, CLI, progress. Depends on nothing else in common/.
LIB_util_DEPS := util
