# lm-sample: text generation from a checkpoint with a KV cache.
TOOL_sample_LIBS := backend cpu $(if $(HAVE_CUDA),cuda) model data text format util
