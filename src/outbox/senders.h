/* SPDX-License-Identifier: ISC */
/*
 * Internals of src/outbox/: the senders deliver.c hands a message or a
 * webhook to. Each returns 0 when it was delivered, or -1 with ERR saying
 * why in words that hold no personal data.
 */
#ifndef CONSENTD_OUTBOX_SENDERS_H
#define CONSENTD_OUTBOX_SENDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_buf;

/* A message to one person, opened from its row. */
struct sender_msg {
	const char	*sm_id;		/* the outbox row: names the file, the Message-ID */
	const char	*sm_from;	/* the controller's address */
	const char	*sm_from_name;
	const char	*sm_to;		/* an email address or a phone number */
	bool		 sm_phone;
	const char	*sm_subject;
	const char	*sm_text;
};

/* libcurl's global set-up, once per process before any thread sends. */
void	sender_init(void);
/* M as an RFC 5322 message (CRLF lines) appended to B. */
void	sender_eml(struct cm_buf *b, const struct sender_msg *m, int64_t now_us);
/* DIR/ID.eml for email, DIR/ID.txt ("To:", "Subject:", text) for a phone. */
int	sender_file(const char *dir, const struct sender_msg *m, int64_t now_us, char *err,
	    size_t errlen);
/* SMTP from the CONSENTD_SMTP_* settings, STARTTLS required. */
int	sender_smtp(const struct sender_msg *m, long timeout_ms, int64_t now_us, char *err,
	    size_t errlen);
/* POSTs BODY to URL with the signature; 2xx is delivered. */
int	sender_webhook(const char *url, const char *event, const char *delivery,
	    const char *signature, const char *body, size_t len, long timeout_ms, char *err,
	    size_t errlen);

#endif
