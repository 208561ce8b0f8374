# lm-eval: loss, perplexity and bits per byte of a checkpoint on held-out data.
TOOL_eval_LIBS := engine cpu $(if $(HAVE_CUDA),cuda) model data text format util
