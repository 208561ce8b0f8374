LIB_model_DEPS := model format util
