# libengine: what drives a backend: choosing one (MakeBackend), loading a
# checkpoint for inference, evaluation and generation. It links every backend
# built, so that those depend only on the interface.
LIB_engine_DEPS := engine cpu $(if $(HAVE_CUDA),cuda) model text format util
LIB_engine_CUDA := $(if $(HAVE_CUDA),1)
