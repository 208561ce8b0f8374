# lm-export: a checkpoint as a GGUF file for llama.cpp or a Hugging Face directory.
TOOL_export_LIBS := model text format util
