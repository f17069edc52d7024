/* Status checks of the userspace C test programs: CHECK exits on any status but
   OK; EXPECT counts a status other than the expected one in `failures`. */
#ifndef MKIPC_TEST_CHECK_H
#define MKIPC_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "mkipc.h"

static int failures;

#define CHECK(expr)                                                                  \
    do {                                                                             \
        int32_t st_ = (expr);                                                        \
        if (st_ != MKIPC_STATUS_OK) {                                                \
            fprintf(stderr, "c: %s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #expr,  \
                    st_, mkipc_status_str(st_));                                     \
            exit(2);                                                                 \
        }                                                                            \
    } while (0)

#define EXPECT(expr, want)                                                           \
    do {                                                                             \
        int32_t st_ = (expr);                                                        \
        if (st_ != (want)) {                                                         \
            fprintf(stderr, "c: %s:%d: %s -> %d (%s), expected %d\n", __FILE__,      \
                    __LINE__, #expr, st_, mkipc_status_str(st_), (int)(want));       \
            failures++;                                                              \
        }                                                                            \
    } while (0)

#endif
