/*
 * check.h — the unit-test harness: a handful of macros, no framework. A failed check prints
 * file:line and the expression and the test binary exits non-zero at the end; checks go on
 * after a failure so one run shows every broken assertion.
 */
#ifndef KESC_TESTS_CHECK_H
#define KESC_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		check_count++;                                                                   \
		if (!(cond)) {                                                                   \
			check_failures++;                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                                \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                  \
	do {                                                                                \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);             \
		check_count++;                                                              \
		if (check_a_ != check_b_) {                                                 \
			check_failures++;                                                   \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
			        __LINE__, #a, #b, check_a_, check_b_);                      \
		}                                                                           \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                      \
	do {                                                                                    \
		const char *check_a_ = (a), *check_b_ = (b);                                    \
		check_count++;                                                                  \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                \
			check_failures++;                                                       \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
			        __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",               \
			        check_b_ ? check_b_ : "(null)");                                \
		}                                                                               \
	} while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/* Runs one test function and reports it. */
#define RUN(fn)                                                                               \
	do {                                                                                  \
		int check_before_ = check_failures;                                           \
		fn();                                                                         \
		fprintf(stderr, "%s %s\n", check_failures == check_before_ ? "ok  " : "FAIL", \
		        #fn);                                                                 \
	} while (0)

#define CHECK_DONE()                                                             \
	(fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures), \
	 check_failures ? 1 : 0)

#endif
