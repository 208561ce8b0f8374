# libcuda: the CUDA backend. It implements the backend interface and needs no
# CPU backend: only the checks in tests/gpu/ (gpu.mk) link the CPU twins too.
LIB_cuda_DEPS := cuda model format util
LIB_cuda_CUDA := 1
