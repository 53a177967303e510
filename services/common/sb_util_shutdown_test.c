/* Tests of sb_util_shutdown. Each case runs in a forked child (the signal mask and the
 * shutdown state are per process); the child reports through its exit status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_util_shutdown.h"
#include "sb_util_time.h"

/* Waits up to ms for pid; kills it and fails the test if it is still running. */
static int
wait_child(pid_t pid, int ms)
{
	int st;
	for (int64_t end = sb_time_mono_ms() + ms; sb_time_mono_ms() < end;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	fail_msg("child %d still running after %d ms", (int)pid, ms);
	return -1;
}

/* Forks a child that installs the handler, says so on a pipe, then exits with body's result.
 * Returns the child's pid once it is ready. */
static pid_t
spawn(int (*body)(void))
{
	int p[2];
	char c;
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (sb_shutdown_install() != 0)
			_exit(90);
		if (write(p[1], "r", 1) != 1)
			_exit(91);
		close(p[1]);
		_exit(body());
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

/* Child: waits like a service's main thread would, with a worker thread running. */
static void *
busy_worker(void *arg)
{
	(void)arg;
	while (!sb_shutdown_requested())
		usleep(1000);
	return NULL;
}

static int
child_wait_for_term(void)
{
	pthread_t t;
	if (sb_shutdown_requested() || sb_shutdown_fd() < 0)
		return 10;
	if (pthread_create(&t, NULL, busy_worker, NULL) != 0)
		return 11;
	int sig = sb_shutdown_wait();
	if (pthread_join(t, NULL) != 0)
		return 12;
	if (!sb_shutdown_requested())
		return 13;
	struct pollfd pfd = { sb_shutdown_fd(), POLLIN, 0 };
	if (poll(&pfd, 1, 0) != 1)
		return 14;
	return sig == SIGTERM ? 0 : 20 + sig;
}

static void
test_sigterm_is_observed(void **state)
{
	(void)state;
	pid_t pid = spawn(child_wait_for_term);
	usleep(20000);
	assert_int_equal(kill(pid, SIGTERM), 0);
	int st = wait_child(pid, 5000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int
child_wait_for_int(void)
{
	return sb_shutdown_wait() == SIGINT ? 0 : 1;
}

static void
test_sigint_is_observed(void **state)
{
	(void)state;
	pid_t pid = spawn(child_wait_for_int);
	assert_int_equal(kill(pid, SIGINT), 0);
	int st = wait_child(pid, 5000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int
child_slow_drain(void)
{
	sb_shutdown_wait();
	sleep(10); /* a drain that takes too long: the second signal must end it */
	return 0;
}

static void
test_second_signal_forces_exit(void **state)
{
	(void)state;
	pid_t pid = spawn(child_slow_drain);
	assert_int_equal(kill(pid, SIGTERM), 0);
	usleep(100000);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still draining */
	assert_int_equal(kill(pid, SIGTERM), 0);
	int st = wait_child(pid, 5000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM);
}

static void *
request_later(void *arg)
{
	(void)arg;
	usleep(50000);
	sb_shutdown_request();
	return NULL;
}

static int
child_programmatic(void)
{
	pthread_t t;
	struct pollfd pfd = { sb_shutdown_fd(), POLLIN, 0 };
	if (poll(&pfd, 1, 0) != 0)
		return 1; /* readable before any request */
	if (pthread_create(&t, NULL, request_later, NULL) != 0)
		return 2;
	if (poll(&pfd, 1, 5000) != 1)
		return 3;
	if (sb_shutdown_wait() != 0)
		return 4;
	pthread_join(t, NULL);
	if (sb_shutdown_install() != 0) /* second call: harmless */
		return 5;
	return sb_shutdown_wait() == 0 ? 0 : 6;
}

static void
test_programmatic_request(void **state)
{
	(void)state;
	pid_t pid = spawn(child_programmatic);
	int st = wait_child(pid, 5000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigterm_is_observed),
		cmocka_unit_test(test_sigint_is_observed),
		cmocka_unit_test(test_second_signal_forces_exit),
		cmocka_unit_test(test_programmatic_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
