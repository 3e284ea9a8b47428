/* Undoes avx2_ops.h or avx512_ops.h: after a type-generic body, before the
 * next type's or instruction set's. */
#undef AV_DOUBLE
#undef AV_TARGET
#undef AV_NAME
#undef AV_TYPED
#undef AV_T
#undef AV_V
#undef AV_LANES
#undef AV_MASK_T
#undef AV_LOAD
#undef AV_STORE
#undef AV_MLOAD
#undef AV_MSTORE
#undef AV_ZERO
#undef AV_SET1
#undef AV_BCAST
#undef AV_FMA
#undef AV_MASK
