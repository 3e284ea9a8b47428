# cpu.h: the one instruction-set decision every kernel module adopts at import.
cdef extern from "cpu.h" nogil:
    enum:
        ARCHFIT_ISA_PORTABLE
        ARCHFIT_ISA_AVX2
        ARCHFIT_ISA_AVX512
        ARCHFIT_ISA_AVX512_BF16
        ARCHFIT_ISA_AMX
        ARCHFIT_ISA_EMULATED
    int archfit_isa_detect()
    void archfit_isa_adopt(int level)
    int archfit_isa()
    unsigned long long archfit_fp_mode()
    void archfit_fp_set(unsigned long long mode)
    unsigned long long archfit_fp_enter()
    void archfit_fp_leave(unsigned long long saved)
    int archfit_fp_flushes(unsigned long long mode)
    unsigned long long archfit_fp_without_flush(unsigned long long mode)
