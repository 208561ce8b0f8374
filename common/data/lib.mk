LIB_data_DEPS := data format util
# The per-token loops (end-of-text scans) want the vectorizer, which -O2 runs
# only on loops of known length. GCC only: clang (make fuzz) refuses the flag.
$(BUILD)/common/data/%.o: LM_CXXFLAGS += $(if $(findstring clang,$(CXX)),,-fvect-cost-model=dynamic)
