TOOL_tokenize_LIBS := $(LIB_text_DEPS)
