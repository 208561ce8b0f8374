LIB_cuda_DEPS := cuda cpu model format util
LIB_cuda_CUDA := 1

# Built only with the CUDA backend (both need the CUDA toolkit's headers; neither
# needs a GPU to build). Prerequisites are spelled out because libs_of is
# defined after the lib.mk files are read.
#   bin/lm-kernel-check         every kernel against its CPU twin on a GPU, and
#                               the whole model on both backends (tests/gpu/kernel_check.cpp)
#   tests/gpu/kernel_emu_test   the same kernels run on the CPU through
#                               tests/gpu/emu.h; a unit test, run by `make test`
#   tests/gpu/backend_emu_test  the whole CUDA backend on the CPU (emulated
#                               kernels, runtime and GEMM) against the CPU backend
ifneq ($(HAVE_CUDA),)
EXTRA_BINS += $(BIN)/lm-kernel-check $(BUILD)/tests/gpu/kernel_emu_test \
  $(BUILD)/tests/gpu/backend_emu_test
$(BIN)/lm-kernel-check: $(BUILD)/tests/gpu/kernel_check.o $(foreach l,$(LIB_cuda_DEPS),$(BUILD)/lib$(l).a)
	@mkdir -p $(BIN)
	$(CXX) $(CXXFLAGS) -fopenmp -o $@ $(filter %.o,$^) -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(LDLIBS) $(CUDA_LDLIBS)
# "#pragma unroll" is unknown to the host compiler (GCC 12 ignores the
# diagnostic pragma for it, so the flag goes here).
$(BUILD)/tests/gpu/kernel_emu_test.o $(BUILD)/tests/gpu/backend_emu_test.o: \
  LM_CXXFLAGS += -Wno-unknown-pragmas
$(BUILD)/tests/gpu/kernel_emu_test: $(BUILD)/tests/gpu/kernel_emu_test.o $(foreach l,$(LIB_cpu_DEPS),$(BUILD)/lib$(l).a)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -fopenmp -o $@ $(filter %.o,$^) -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(LDLIBS)
# Linked without the CUDA libraries: the test serves the runtime calls itself.
$(BUILD)/tests/gpu/backend_emu_test: $(BUILD)/tests/gpu/backend_emu_test.o $(foreach l,$(LIB_cpu_DEPS),$(BUILD)/lib$(l).a)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -fopenmp -o $@ $(filter %.o,$^) -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(LDLIBS)
endif
