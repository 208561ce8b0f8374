# lm-pack: packs token streams into shards (common/data).
TOOL_pack_LIBS := $(LIB_data_DEPS)
