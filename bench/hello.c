/* SPDX-License-Identifier: ISC */
/*
 * hello: the same-run baseline for the benchmarks. A bare libmicrohttpd
 * server with consentd's threading and options (internal thread pool over
 * epoll, one thread per core, turbo, response queued on the second call so
 * keep-alive holds) answering every request with a fixed small JSON body.
 *
 *   hello PORT [THREADS]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static struct MHD_Response *reply;

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *data, size_t *size, void **ctx)
{
	static int first;

	(void)cls; (void)url; (void)method; (void)version; (void)data;
	if (*ctx == NULL) {
		*ctx = &first;
		return MHD_YES;
	}
	*size = 0;
	return MHD_queue_response(c, MHD_HTTP_OK, reply);
}

int
main(int argc, char **argv)
{
	static const char body[] = "{\"decision\":\"allow\",\"reason\":\"consent\"}";
	struct MHD_Daemon *d;
	unsigned threads;
	sigset_t s;
	int sig, port;

	if (argc < 2 || (port = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: hello PORT [THREADS]\n");
		return 64;
	}
	threads = argc > 2 ? (unsigned)atoi(argv[2]) : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	reply = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(reply, "Content-Type", "application/json; charset=utf-8");
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO,
	    (uint16_t)port, NULL, NULL, handler, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, 1024u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "hello: cannot start\n");
		return 1;
	}
	fprintf(stderr, "hello: listening on %d with %u threads\n", port, threads);
	sigwait(&s, &sig);
	MHD_stop_daemon(d);
	MHD_destroy_response(reply);
	return 0;
}
