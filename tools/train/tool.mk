# lm-train: the backends (CPU, and CUDA when built), the model, the loader, the vocabulary.
TOOL_train_LIBS := $(LIB_backend_DEPS) data text
