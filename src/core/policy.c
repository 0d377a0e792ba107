/* SPDX-License-Identifier: ISC */
/*
 * Loading the policy document. jansson parses the JSON;
 * policy_schema.c checks it, policy_field.c reads it and names the line of
 * a failing field. The accepted document, with defaults filled in, is the
 * public view served at GET /v1/policy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "consentd/policy.h"
#include "consentd/util.h"
#include "policy_int.h"

cm_result
cm_policy_parse(const char *file, const char *text, size_t len,
    struct cm_policy **out, char *err, size_t errlen)
{
	struct cm_policy *p;
	struct pctx c;
	json_error_t je;
	json_t *doc;
	char *pub;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.file = file;
	c.text = text;
	c.len = len;
	c.err = err;
	c.errlen = errlen;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		snprintf(err, errlen, "%s:%d: (document): %s", file, je.line, je.text);
		return CM_INVALID;
	}
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "%s:%d: (document): must be a JSON object", file,
		    pc_loc_line(text, pc_loc_ws(text, len, 0)));
		json_decref(doc);
		return CM_INVALID;
	}
	p = cm_calloc(1, sizeof(*p));
	p->pol_doc = doc;
	p->pol_file = cm_strdup(file);
	p->pol_text = cm_strndup(text, len);
	p->pol_text_len = len;
	pc_check_document(&c, doc, p);
	if (c.failed) {
		cm_policy_free(p);
		return CM_INVALID;
	}
	pc_fill_defaults(doc, p);
	pub = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (pub == NULL) {
		snprintf(err, errlen, "%s: cannot encode the policy", file);
		cm_policy_free(p);
		return CM_IOERR;
	}
	p->pol_public = pub;
	p->pol_public_len = strlen(pub);
	*out = p;
	return CM_OK;
}

cm_result
cm_policy_load(const char *path, struct cm_policy **out, char *err, size_t errlen)
{
	struct stat st;
	char file[4096], *text;
	size_t len;
	cm_result rc;
	int n;

	*out = NULL;
	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return CM_NOTFOUND;
	}
	if (S_ISDIR(st.st_mode))
		n = snprintf(file, sizeof(file), "%s/%s", path, CM_POLICY_FILE);
	else
		n = snprintf(file, sizeof(file), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(file)) {
		snprintf(err, errlen, "policy path too long");
		return CM_INVALID;
	}
	if ((text = cm_file_read(file, CM_POLICY_MAX_BYTES, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", file, errno == EFBIG ?
		    "larger than 1 MiB" : strerror(errno));
		return errno == ENOENT ? CM_NOTFOUND : CM_IOERR;
	}
	rc = cm_policy_parse(file, text, len, out, err, errlen);
	free(text);
	return rc;
}

void
cm_policy_free(struct cm_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	json_decref(p->pol_doc);
	free(p->pol_public);
	free(p->pol_file);
	free(p->pol_text);
	for (i = 0; p->pol_channels != NULL && i < p->pol_nchannels; i++)
		free(p->pol_channels[i].ch_id_types);
	free(p->pol_channels);
	free(p->pol_purposes);
	free(p->pol_topics);
	free(p->pol_frequencies);
	free(p->pol_id_types);
	free(p);
}
