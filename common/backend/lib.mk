# libbackend: the backend interface and the factory. Users link the CPU backend
# always and the CUDA backend when nvcc was found.
LIB_backend_DEPS := backend cpu $(if $(HAVE_CUDA),cuda) model format util
LIB_backend_CUDA := $(if $(HAVE_CUDA),1)
