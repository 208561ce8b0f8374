LIB_cpu_DEPS := cpu backend model format util
