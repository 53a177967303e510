/* sb_metrics_proc.c: the process_* metrics, read from /proc at scrape time. */
#include "sb_metrics.h"
#include "sb_err.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct sb_metrics_proc {
	double cpu_seconds, rss_bytes, vsize_bytes, open_fds, max_fds, start_time;
};

/* The process metrics: one row per family, in the order they are written. */
static const struct sb_metrics_proc_row {
	const char *name;
	const char *type;
	const char *help;
	size_t offset;
} sb_metrics_proc_rows[] = {
	{ "process_cpu_seconds_total", "counter",
	  "Total user and system CPU time spent in seconds.",
	  offsetof(struct sb_metrics_proc, cpu_seconds) },
	{ "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	  offsetof(struct sb_metrics_proc, rss_bytes) },
	{ "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
	  offsetof(struct sb_metrics_proc, vsize_bytes) },
	{ "process_open_fds", "gauge", "Number of open file descriptors.",
	  offsetof(struct sb_metrics_proc, open_fds) },
	{ "process_max_fds", "gauge", "Maximum number of open file descriptors.",
	  offsetof(struct sb_metrics_proc, max_fds) },
	{ "process_start_time_seconds", "gauge",
	  "Start time of the process since unix epoch in seconds.",
	  offsetof(struct sb_metrics_proc, start_time) },
};

#define SB_METRICS_NPROC (sizeof(sb_metrics_proc_rows) / sizeof(sb_metrics_proc_rows[0]))

int
sb__metrics_is_process_name(const char *name)
{
	for (size_t i = 0; i < SB_METRICS_NPROC; i++) {
		if (strcmp(sb_metrics_proc_rows[i].name, name) == 0)
			return 1;
	}
	return 0;
}

/* sb_metrics_boot_time returns the system boot time (btime of /proc/stat), or 0. */
static double
sb_metrics_boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	if (f == NULL)
		return 0;
	char line[256];
	double bt = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "btime ", 6) == 0) {
			bt = strtod(line + 6, NULL);
			break;
		}
	}
	fclose(f);
	return bt;
}

/* sb_metrics_read_stat fills the fields that come from /proc/self/stat. */
static int
sb_metrics_read_stat(struct sb_metrics_proc *p)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	if (f == NULL)
		return SB_EIO;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields restart after the last ')'. */
	char *s = strrchr(buf, ')');
	if (s == NULL)
		return SB_EIO;
	unsigned long utime, stime, vsize;
	unsigned long long start;
	long rss;
	/* Fields 3..24: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
	 * stime cutime cstime priority nice threads itrealvalue starttime vsize rss. */
	if (sscanf(s + 1,
	           " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
	           "%llu %lu %ld",
	           &utime, &stime, &start, &vsize, &rss) != 5)
		return SB_EIO;
	double tck = (double)sysconf(_SC_CLK_TCK);
	p->cpu_seconds = (double)(utime + stime) / tck;
	p->vsize_bytes = (double)vsize;
	p->rss_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);
	p->start_time = sb_metrics_boot_time() + (double)start / tck;
	return 0;
}

static double
sb_metrics_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	double n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory stream's own descriptor */
}

int
sb__metrics_render_process(struct sb_buf *out)
{
	struct sb_metrics_proc p = { 0 };
	if (sb_metrics_read_stat(&p) != 0)
		return 0; /* no /proc: nothing to report, not an error of the caller */
	p.open_fds = sb_metrics_count_fds();
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		p.max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
	int rc = 0;
	for (size_t i = 0; i < SB_METRICS_NPROC; i++) {
		const struct sb_metrics_proc_row *r = &sb_metrics_proc_rows[i];
		double v;
		memcpy(&v, (const char *)&p + r->offset, sizeof(v));
		rc |= sb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s ", r->name, r->help,
		                    r->name, r->type, r->name);
		rc |= sb__metrics_fmt_double(out, v);
		rc |= sb_buf_append(out, "\n", 1);
	}
	return rc ? SB_ENOMEM : 0;
}
