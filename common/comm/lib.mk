# libcomm: the collectives of data-parallel training (none, MPI, NCCL) behind
# backend/comm.h. MPI when the Makefile found it (LM_HAVE_MPI), NCCL in the
# CUDA build; users link what it needs through LIB_comm_LDLIBS.
LIB_comm_DEPS := comm model format util
LIB_comm_LDLIBS := $(MPI_LDLIBS) $(NCCL_LDLIBS)
LIB_comm_CUDA := $(if $(HAVE_NCCL),1)
