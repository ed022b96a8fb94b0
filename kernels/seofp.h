/* SEOFP kernels: sign-exponent-only weights, products by integer addition (docs: KERNEL.md). */
#ifndef SEOFP_H
#define SEOFP_H
#include <stdint.h>
#include <stddef.h>

/* cffi-cdef-begin */
/* "avx2" or "portable": which code path this build dispatches to at run time. */
const char *seofp_variant(void);
/* cffi-cdef-end */

#endif
