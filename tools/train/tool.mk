# lm-train: the engine and the backends it chooses, the model, the loader, the vocabulary.
TOOL_train_LIBS := engine cpu $(if $(HAVE_CUDA),cuda) model data text format util
