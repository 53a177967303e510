/* Tests of the S3 backend's requests against a scripted server on 127.0.0.1 (each connection
 * gets the next canned answer; the requests are recorded): the bucket probe, retries of
 * failures that may pass (503, 500, a dropped connection) and none of those that will not
 * (403, POST), the metrics they count, and a read across two segments (the listing, then one
 * ranged GET per segment). The real S3 server tests are tests/integration/files_s3_test.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "files.h"
#include "s3.h"
#include "sb_err.h"
#include "sb_metrics.h"

#define ANSWERS_MAX 16

struct srv {
	int lfd, port;
	pthread_t th;
	const char *answers[ANSWERS_MAX]; /* NULL: close without a word */
	int n, next;
	char reqs[ANSWERS_MAX][1024]; /* each request's head */
};

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	for (;;) {
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		char buf[65536] = "";
		size_t got = 0, need = 0;
		for (;;) {
			ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = '\0';
			char *e = strstr(buf, "\r\n\r\n");
			if (e == NULL)
				continue;
			if (need == 0) {
				char *cl = strcasestr(buf, "\r\nContent-Length:");
				need = (size_t)(e + 4 - buf) +
				       (cl && cl < e ? strtoul(cl + 17, NULL, 10) : 0);
			}
			if (got >= need)
				break;
		}
		int i = s->next++;
		if (i < ANSWERS_MAX)
			snprintf(s->reqs[i], sizeof(s->reqs[i]), "%.1000s", buf);
		const char *a = i < s->n ? s->answers[i] : "HTTP/1.1 599 Script Ended\r\n\r\n";
		if (a != NULL && send(fd, a, strlen(a), MSG_NOSIGNAL) < 0)
			perror("send");
		close(fd);
	}
}

static struct srv *
srv_start(void)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_non_null(s);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
	return s;
}

static void
srv_stop(struct srv *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	close(s->lfd);
	pthread_join(s->th, NULL);
	free(s);
}

/* script sets the answers of the next connections. */
static void
script(struct srv *s, int n, ...)
{
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		s->answers[s->next + i] = va_arg(ap, const char *);
	va_end(ap);
	s->n = s->next + n;
}

#define OK_EMPTY "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
#define LIST_EMPTY                                                                                 \
	"HTTP/1.1 200 OK\r\nContent-Length: 91\r\n\r\n<ListBucketResult><IsTruncated>false"        \
	"</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>"
#define SLOW_DOWN                                                                                  \
	"HTTP/1.1 503 Slow Down\r\nContent-Length: 36\r\n\r\n<Error><Code>SlowDown</Code></Error>"
#define INTERNAL "HTTP/1.1 500 Internal\r\nContent-Length: 0\r\n\r\n"
#define DENIED                                                                                     \
	"HTTP/1.1 403 Forbidden\r\nContent-Length: "                                               \
	"40\r\n\r\n<Error><Code>AccessDenied</Code></Error>"

static double
count(const char *method, const char *outcome)
{
	struct sb_metric *m = sb_metrics_counter("files_s3_requests_total", "x", "method,outcome");
	return sb_series_value(sb_metric_with(m, method, outcome));
}

static double
retries(void)
{
	return sb_series_value(
	    sb_metric_with(sb_metrics_counter("files_s3_retries_total", "x", NULL)));
}

static struct files_store *
open_store(struct srv *s)
{
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s->port);
	struct s3_opts o = { .endpoint = ep,
		             .bucket = "bkt",
		             .region = "us-east-1",
		             .access_key = "AK",
		             .secret_key = "SK",
		             .timeout_ms = 3000 };
	struct files_store *st = NULL;
	script(s, 1, LIST_EMPTY);
	assert_int_equal(s3_store_open(&o, &st), 0);
	assert_non_null(strstr(s->reqs[0], "GET /bkt?list-type=2&max-keys=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[0], "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AK/"));
	return st;
}

static void
test_retries(void **state)
{
	(void)state;
	struct srv *s = srv_start();
	struct files_store *st = open_store(s);
	double put5 = count("PUT", "5xx"), put2 = count("PUT", "2xx"), r0 = retries();

	/* 503 then 200: written, two attempts */
	script(s, 2, SLOW_DOWN, OK_EMPTY);
	assert_int_equal(st->ops->write(st, "up/a", 5, "hello", 5), 0);
	assert_non_null(strstr(s->reqs[1], "PUT /bkt/up/a/00000000000000000005 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[2], "PUT /bkt/up/a/00000000000000000005 HTTP/1.1\r\n"));
	assert_true(strstr(s->reqs[2], "\r\n\r\nhello") != NULL);
	assert_true(count("PUT", "5xx") == put5 + 1);
	assert_true(count("PUT", "2xx") == put2 + 1);
	assert_true(retries() == r0 + 1);

	/* 500 three times: an error after three attempts */
	int before = s->next;
	script(s, 3, INTERNAL, INTERNAL, INTERNAL);
	assert_int_equal(st->ops->write(st, "up/a", 0, "x", 1), SB_EIO);
	assert_int_equal(s->next - before, 3);

	/* 403: no second attempt */
	before = s->next;
	script(s, 2, DENIED, OK_EMPTY);
	assert_int_equal(st->ops->write(st, "up/a", 0, "x", 1), SB_EIO);
	assert_int_equal(s->next - before, 1);
	s->n = s->next; /* the unused answer */

	/* a dropped connection, then the answer: a GET (listing) is tried again */
	before = s->next;
	int64_t size = 0;
	script(s, 2, NULL, LIST_EMPTY);
	assert_int_equal(st->ops->size(st, "up/none", &size), SB_ENOTFOUND);
	assert_int_equal(s->next - before, 2);
	assert_true(count("GET", "error") >= 1);

	files_store_close(st);
	srv_stop(s);
}

static void
test_read_two_segments(void **state)
{
	(void)state;
	struct srv *s = srv_start();
	struct files_store *st = open_store(s);
	static const char list[] =
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "d3\r\n<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>up/r/"
	    "00000000000000000000</Key><Size>3</Size></Contents><Contents><Key>up/r/"
	    "00000000000000000003</Key><Size>2</Size></Contents></ListBucketResult>\r\n0\r\n\r\n";
	assert_int_equal(
	    strlen("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>up/r/"
	           "00000000000000000000</Key><Size>3</Size></Contents><Contents><Key>up/"
	           "r/00000000000000000003</Key><Size>2</Size></Contents>"
	           "</ListBucketResult>"),
	    0xd3);
	int first = s->next;
	script(s, 3, list,
	       "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1-2/3\r\nContent-Length: 2\r\n"
	       "\r\nbc",
	       "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/2\r\nContent-Length: 1\r\n"
	       "\r\nd");
	char buf[8] = { 0 };
	size_t got = 0;
	assert_int_equal(st->ops->read(st, "up/r", 1, buf, 3, &got), 0);
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "bcd", 3);
	assert_non_null(
	    strstr(s->reqs[first], "GET /bkt?list-type=2&prefix=up%2Fr%2F HTTP/1.1\r\n"));
	assert_non_null(
	    strstr(s->reqs[first + 1], "GET /bkt/up/r/00000000000000000000 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[first + 1], "\r\nRange: bytes=1-2\r\n"));
	assert_non_null(
	    strstr(s->reqs[first + 2], "GET /bkt/up/r/00000000000000000003 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[first + 2], "\r\nRange: bytes=0-0\r\n"));
	/* a server that ignores the Range (the whole segment from its start): an error, never
	 * wrong bytes */
	script(s, 2, list, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
	memset(buf, 0, sizeof(buf));
	assert_int_not_equal(st->ops->read(st, "up/r", 1, buf, 4, &got), 0);
	assert_int_equal(got, 0);
	files_store_close(st);
	srv_stop(s);
}

/* list_answer writes a ListObjectsV2 answer with the segments (off, size) of key to out. */
static void
list_answer(char *out, size_t cap, const char *key, int n, const long long *segs)
{
	char body[2048];
	size_t b = (size_t)snprintf(body, sizeof(body),
	                            "<ListBucketResult><IsTruncated>false</IsTruncated>");
	for (int i = 0; i < n; i++)
		b += (size_t)snprintf(body + b, sizeof(body) - b,
		                      "<Contents><Key>%s/%020lld</Key><Size>%lld</Size></Contents>",
		                      key, segs[2 * i], segs[2 * i + 1]);
	b += (size_t)snprintf(body + b, sizeof(body) - b, "</ListBucketResult>");
	snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", b, body);
}

static void
test_truncate(void **state)
{
	(void)state;
	struct srv *s = srv_start();
	struct files_store *st = open_store(s);
	static char l1[4096], l2[4096], l3[4096];
	/* cut at 4: the segment 3..6 is written again with its first byte, the one off the chain
	 * (at 10) is deleted */
	const long long segs[] = { 0, 3, 3, 3, 10, 1 };
	list_answer(l1, sizeof(l1), "up/t", 3, segs);
	int first = s->next;
	script(s, 4, l1,
	       "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/3\r\nContent-Length: 1\r\n"
	       "\r\nd",
	       OK_EMPTY, "HTTP/1.1 204 No Content\r\n\r\n");
	assert_int_equal(st->ops->truncate(st, "up/t", 4), 0);
	assert_int_equal(s->next - first, 4);
	assert_non_null(
	    strstr(s->reqs[first + 1], "GET /bkt/up/t/00000000000000000003 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[first + 1], "\r\nRange: bytes=0-0\r\n"));
	assert_non_null(
	    strstr(s->reqs[first + 2], "PUT /bkt/up/t/00000000000000000003 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[first + 2], "\r\nContent-Length: 1\r\n"));
	assert_non_null(strstr(s->reqs[first + 2], "\r\n\r\nd"));
	assert_non_null(
	    strstr(s->reqs[first + 3], "DELETE /bkt/up/t/00000000000000000010 HTTP/1.1\r\n"));

	/* extend 3 to 5: a segment of two zero bytes at 3 */
	const long long one[] = { 0, 3 };
	list_answer(l2, sizeof(l2), "up/e", 1, one);
	first = s->next;
	script(s, 2, l2, OK_EMPTY);
	assert_int_equal(st->ops->truncate(st, "up/e", 5), 0);
	assert_int_equal(s->next - first, 2);
	assert_non_null(
	    strstr(s->reqs[first + 1], "PUT /bkt/up/e/00000000000000000003 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[first + 1], "\r\nContent-Length: 2\r\n"));

	/* an empty object is one empty segment at 0 */
	list_answer(l3, sizeof(l3), "up/z", 0, NULL);
	first = s->next;
	script(s, 2, l3, OK_EMPTY);
	assert_int_equal(st->ops->truncate(st, "up/z", 0), 0);
	assert_non_null(
	    strstr(s->reqs[first + 1], "PUT /bkt/up/z/00000000000000000000 HTTP/1.1\r\n"));
	assert_non_null(strstr(s->reqs[first + 1], "\r\nContent-Length: 0\r\n"));
	files_store_close(st);
	srv_stop(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retries),
		cmocka_unit_test(test_read_two_segments),
		cmocka_unit_test(test_truncate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
