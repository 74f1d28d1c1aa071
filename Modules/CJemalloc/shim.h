// jemalloc replaces the C library's malloc for the whole `swiftkeeper` process (linking it is
// enough: the executable's own libraries come before libc in symbol lookup). Only the control
// interface is declared here, so that jemalloc.h's malloc and free do not clash with Glibc's.
#include <stddef.h>

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
