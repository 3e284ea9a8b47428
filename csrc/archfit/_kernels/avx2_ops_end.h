/* Undoes avx2_ops.h: after a type-generic body, before the next type's. */
#undef AV_DOUBLE
#undef AV_T
#undef AV_V
#undef AV_LANES
#undef AV_LOAD
#undef AV_STORE
#undef AV_MLOAD
#undef AV_MSTORE
#undef AV_ZERO
#undef AV_SET1
#undef AV_BCAST
#undef AV_FMA
#undef AV_LANE_INDEX
#undef AV_MASK
