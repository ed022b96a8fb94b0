#include "seofp.h"

const char *seofp_variant(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "portable";
}
