LIB_data_DEPS := data format util
