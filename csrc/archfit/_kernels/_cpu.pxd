# cpu.h: the one instruction-set decision every kernel module adopts at import.
cdef extern from "cpu.h" nogil:
    enum:
        ARCHFIT_ISA_PORTABLE
        ARCHFIT_ISA_AVX2
        ARCHFIT_ISA_AVX512
    int archfit_isa_detect()
    void archfit_isa_adopt(int level)
    int archfit_isa()
