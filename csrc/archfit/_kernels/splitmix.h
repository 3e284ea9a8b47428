/* SplitMix64 (Steele, Lea & Flood 2014), the generator of _random.pyx: the
 * state advances by the golden-ratio constant and each draw is the state
 * through archfit_splitmix's finaliser. Shared by _random.pyx and dropout.h. */
#ifndef ARCHFIT_SPLITMIX_H
#define ARCHFIT_SPLITMIX_H

#include <stdint.h>

#define ARCHFIT_GOLDEN 0x9E3779B97F4A7C15ULL
#define ARCHFIT_MIX1 0xBF58476D1CE4E5B9ULL
#define ARCHFIT_MIX2 0x94D049BB133111EBULL

static inline uint64_t archfit_splitmix(uint64_t z) {
    z = (z ^ (z >> 30)) * ARCHFIT_MIX1;
    z = (z ^ (z >> 27)) * ARCHFIT_MIX2;
    return z ^ (z >> 31);
}

#endif
