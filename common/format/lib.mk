# libformat: one reader/writer pair per file format.
LIB_format_DEPS := format util
# The per-token loops (widening, range checks) want the vectorizer, which -O2
# runs only on loops of known length. GCC only: clang (make fuzz) refuses the flag.
$(BUILD)/common/format/%.o: LM_CXXFLAGS += $(if $(findstring clang,$(CXX)),,-fvect-cost-model=dynamic)
