# lm-train: the engine and the backends it chooses, the collectives, the model, the
# loader, the vocabulary.
TOOL_train_LIBS := engine cpu $(if $(HAVE_CUDA),cuda) comm model data text format util
