# lm-sample: text generation from a checkpoint with a KV cache.
TOOL_sample_LIBS := engine cpu $(if $(HAVE_CUDA),cuda) model text format util
