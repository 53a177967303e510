/* histpct.c: merges the sparse latency histograms of bench/lib (bl.h: "index:count,...", from
 * one or more reports of one or more processes) read on stdin, and prints the count and the
 * percentiles asked for, in milliseconds: `histpct 0.5 0.99` prints "COUNT P50 P99". With no
 * argument it prints the count, p50 and p99. Used by pipeline_bench.sh and
 * realtime_fanout_bench.sh. */
#include <stdio.h>
#include <stdlib.h>

#include "bl.h"

int
main(int argc, char **argv)
{
	static struct bl_hist h;
	bl_prog = "histpct";
	bl_hist_merge_text(&h, stdin);
	printf("%llu", (unsigned long long)h.count);
	if (argc < 2) {
		printf(" %.1f %.1f\n", bl_hist_pct(&h, 0.50) / 1000, bl_hist_pct(&h, 0.99) / 1000);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		char *end;
		double p = strtod(argv[i], &end);
		if (*end != '\0' || !(p > 0 && p <= 1)) {
			fprintf(stderr, "histpct: %s is not a quantile in (0, 1]\n", argv[i]);
			return 2;
		}
		printf(" %.1f", bl_hist_pct(&h, p) / 1000);
	}
	printf("\n");
	return 0;
}
