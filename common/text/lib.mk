LIB_text_DEPS := text format util
