/* evhtp.h has an unprototyped typedef and other warnings under our flags: include it as a system
 * header so -Werror applies to our code only. */
#ifndef HENDELSE_SERVER_EVHTP_INC_H
#define HENDELSE_SERVER_EVHTP_INC_H
#pragma GCC system_header
#include <evhtp/evhtp.h>
#endif
