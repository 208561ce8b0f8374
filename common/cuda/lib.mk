LIB_cuda_DEPS := cuda backend cpu model format util
LIB_cuda_CUDA := 1
