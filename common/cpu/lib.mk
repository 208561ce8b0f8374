LIB_cpu_DEPS := cpu model format util
