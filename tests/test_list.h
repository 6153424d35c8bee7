/*
 * test_list.h - the one list of tests: each layer's file holds one X(name)
 * line per test, and test.h / test_main.c expand them. No include guard:
 * it is expanded more than once on purpose. -DTEST_SKIP_<LAYER> leaves a
 * layer out (for building one layer's tests alone while others are edited).
 */
#ifndef TEST_SKIP_CRYPTO
#include "list_crypto.h"
#endif
#ifndef TEST_SKIP_FRAME
#include "list_frame.h"
#endif
#ifndef TEST_SKIP_UTF8
#include "list_utf8.h"
#endif
#ifndef TEST_SKIP_HANDSHAKE
#include "list_handshake.h"
#endif
#ifndef TEST_SKIP_CONN
#include "list_conn.h"
#endif
#ifndef TEST_SKIP_PROPERTY
#include "list_property.h"
#endif
#ifndef TEST_SKIP_HARDENING
#include "list_hardening.h"
#endif
