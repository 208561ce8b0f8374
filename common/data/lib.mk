LIB_data_DEPS := data format util
# The per-token loops (end-of-text scans) want the vectorizer, which -O2 runs
# only on loops of known length.
$(BUILD)/common/data/%.o: LM_CXXFLAGS += -fvect-cost-model=dynamic
