"""Fingerprints of training data: XXH64 for two seeds in one pass (``xxh64.h``)."""
from libc.stdint cimport uint64_t

cdef extern from "xxh64.h" nogil:
    ctypedef struct archfit_xxh64x2:
        pass
    void archfit_xxh64x2_init(archfit_xxh64x2* s, uint64_t seed0, uint64_t seed1)
    void archfit_xxh64x2_update(archfit_xxh64x2* s, const void* data, size_t length)
    uint64_t archfit_xxh64x2_digest(const archfit_xxh64x2* s, int h)


cdef class Fingerprint:
    """A 128-bit streaming hash: XXH64 of the bytes with seeds `seed0` and `seed1`.

    ``update`` takes any buffer (hashed as its C-order bytes) and runs
    without the GIL; ``hexdigest`` gives the two 64-bit values, big-endian hex,
    seed0's first. Each half equals the reference XXH64 of the same bytes.
    """
    cdef archfit_xxh64x2 state

    def __init__(self, uint64_t seed0=0, uint64_t seed1=1):
        archfit_xxh64x2_init(&self.state, seed0, seed1)

    def update(self, data):
        """Hash the bytes of `data` (bytes, or an array: read as its C-order bytes)."""
        mv = memoryview(data)
        cdef const unsigned char[::1] view = mv.cast("B") if mv.c_contiguous \
            else memoryview(bytes(mv))
        if view.shape[0]:
            with nogil:
                archfit_xxh64x2_update(&self.state, &view[0], view.shape[0])
        return self

    def digest(self, int which):
        """XXH64 of everything hashed so far, for seed0 (0) or seed1 (1)."""
        if which not in (0, 1):
            raise ValueError("which must be 0 or 1")
        return archfit_xxh64x2_digest(&self.state, which)

    def hexdigest(self):
        """Both XXH64 values as 32 hex digits."""
        return f"{self.digest(0):016x}{self.digest(1):016x}"
