/* SPDX-License-Identifier: ISC */
/*
 * What the libFuzzer targets under tests/fuzz/ share: the entry points
 * libFuzzer calls (declared here for -Wmissing-prototypes), a check that
 * stops the run with a message the sanitizer's report carries, and the
 * shipped policy, loaded once. Each target is one file that calls the
 * real function; `make fuzz` builds them with clang and runs them.
 */
#ifndef CONSENTD_FUZZ_H
#define CONSENTD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sanitizer/common_interface_defs.h>

#include "consentd/policy.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Stops the run when COND is false. The message goes where the sanitizer
 * reports go, which stays open when libFuzzer runs with -close_fd_mask.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		char fuzz_msg_[256];					\
		snprintf(fuzz_msg_, sizeof(fuzz_msg_),			\
		    "fuzz check failed: %s (%s:%d)", #cond, __FILE__,	\
		    __LINE__);						\
		__sanitizer_report_error_summary(fuzz_msg_);		\
		abort();						\
	}								\
} while (0)

/*
 * The policy the service ships (policy/policy.json, or the file or
 * directory CONSENTD_FUZZ_POLICY names), loaded on first use and kept for
 * the run. Stops the run when it does not load.
 */
static inline struct cm_policy *
fuzz_policy(void)
{
	static struct cm_policy *p;
	const char *path;
	char err[512];

	if (p != NULL)
		return p;
	if ((path = getenv("CONSENTD_FUZZ_POLICY")) == NULL)
		path = "policy";
	if (cm_policy_load(path, &p, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "fuzz: cannot load the policy: %s\n", err);
		abort();
	}
	return p;
}

#endif
