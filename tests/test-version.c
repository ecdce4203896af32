/*
 * Version macros against the meson project version, and the error table.
 *
 * SPDX-License-Identifier: MIT
 */
#include "test-common.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#ifndef SSE_PROJECT_VERSION
#error "tests/meson.build passes SSE_PROJECT_VERSION, the meson project version"
#endif

/* Usable in #if, as users will test them. */
#if SSE_VERSION_MAJOR < 0 || SSE_VERSION_MINOR < 0 || SSE_VERSION_PATCH < 0
#error "SSE_VERSION_* must be non-negative integer constants"
#endif

struct code {
	const char *name;
	int value;
	const char *text;
};

static const struct code codes[] = {
#define SSE_TEST_CODE(name, value, text) {#name, name, text},
	SSE_ERRORS(SSE_TEST_CODE)
#undef SSE_TEST_CODE
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

START_TEST(test_version_macros_match_project_version)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%d.%d.%d", SSE_VERSION_MAJOR, SSE_VERSION_MINOR,
		 SSE_VERSION_PATCH);
	ck_assert_str_eq(buf, SSE_PROJECT_VERSION);
	ck_assert_str_eq(SSE_VERSION_STRING, SSE_PROJECT_VERSION);
}
END_TEST

START_TEST(test_version_parts_fit_packing)
{
	/* minor and patch each get 8 bits in sse_version(). */
	ck_assert_int_lt(SSE_VERSION_MINOR, 256);
	ck_assert_int_lt(SSE_VERSION_PATCH, 256);
	ck_assert_int_lt(SSE_VERSION_MAJOR, 256);
}
END_TEST

START_TEST(test_version_function_returns_packed_value)
{
	unsigned want = ((unsigned)SSE_VERSION_MAJOR << 16) |
			((unsigned)SSE_VERSION_MINOR << 8) | (unsigned)SSE_VERSION_PATCH;

	ck_assert_uint_eq(sse_version(), want);
	ck_assert_uint_eq(sse_version() >> 16, SSE_VERSION_MAJOR);
	ck_assert_uint_eq((sse_version() >> 8) & 0xffu, SSE_VERSION_MINOR);
	ck_assert_uint_eq(sse_version() & 0xffu, SSE_VERSION_PATCH);
}
END_TEST

START_TEST(test_version_error_codes_negative_and_distinct)
{
	ck_assert_uint_gt(NCODES, 0);
	for (size_t i = 0; i < NCODES; i++) {
		ck_assert_msg(codes[i].value < 0, "%s = %d is not negative", codes[i].name,
			      codes[i].value);
		for (size_t j = i + 1; j < NCODES; j++)
			ck_assert_msg(codes[i].value != codes[j].value, "%s and %s share %d",
				      codes[i].name, codes[j].name, codes[i].value);
	}
}
END_TEST

START_TEST(test_version_strerror_known_codes)
{
	for (size_t i = 0; i < NCODES; i++) {
		const char *t = sse_strerror(codes[i].value);

		ck_assert_msg(t != NULL, "sse_strerror(%s) is NULL", codes[i].name);
		ck_assert_msg(t[0] != '\0', "sse_strerror(%s) is empty", codes[i].name);
		ck_assert_str_eq(t, codes[i].text);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(t, sse_strerror(codes[j].value)) != 0,
				      "%s and %s share the text \"%s\"", codes[i].name,
				      codes[j].name, t);
	}
}
END_TEST

START_TEST(test_version_strerror_ok_and_unknown)
{
	static const int unknown[] = {1, 42, -1000, INT_MIN, INT_MAX};
	const char *ok = sse_strerror(SSE_OK);
	const char *u = sse_strerror(-1000);

	ck_assert_ptr_nonnull(ok);
	ck_assert_ptr_nonnull(u);
	ck_assert_str_ne(u, ok);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *t = sse_strerror(unknown[i]);

		ck_assert_msg(t != NULL, "sse_strerror(%d) is NULL", unknown[i]);
		/* One text for every unknown code, and it says so. */
		ck_assert_str_eq(t, u);
		ck_assert_msg(strstr(t, "unknown") != NULL, "sse_strerror(%d) = \"%s\"",
			      unknown[i], t);
	}
	for (size_t i = 0; i < NCODES; i++) {
		ck_assert_str_ne(sse_strerror(codes[i].value), u);
		ck_assert_str_ne(sse_strerror(codes[i].value), ok);
	}
}
END_TEST

static Suite *version_suite(void)
{
	Suite *s = suite_create("version");
	TCase *tc = tcase_create("version");

	tcase_add_test(tc, test_version_macros_match_project_version);
	tcase_add_test(tc, test_version_parts_fit_packing);
	tcase_add_test(tc, test_version_function_returns_packed_value);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_version_error_codes_negative_and_distinct);
	tcase_add_test(tc, test_version_strerror_known_codes);
	tcase_add_test(tc, test_version_strerror_ok_and_unknown);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(version_suite());
}
