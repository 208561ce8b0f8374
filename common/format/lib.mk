# libformat: one reader/writer pair per file format.
LIB_format_DEPS := format util
# The per-token loops (widening, range checks) want the vectorizer, which -O2
# runs only on loops of known length.
$(BUILD)/common/format/%.o: LM_CXXFLAGS += -fvect-cost-model=dynamic
