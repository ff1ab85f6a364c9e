/* kpread FILE RUNS REPS: pread FILE (a /proc/kpage* file) once per (pfn, pages)
 * pair of RUNS (native u64 pairs), REPS times, and print the least CPU seconds
 * of one pass. It is what the kernel costs to hand out the kpage values a
 * command needs: bench.py adds it to the plain command for that command's floor.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: kpread FILE RUNS REPS\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	FILE *f = fopen(argv[2], "rb");
	int reps = atoi(argv[3]);
	struct stat st;
	if (fd < 0 || !f || fstat(fileno(f), &st) < 0) {
		perror("kpread");
		return 1;
	}
	size_t n = st.st_size / 16, most = 1;
	uint64_t (*runs)[2] = malloc(16 * n + 16);
	if (!runs || fread(runs, 16, n, f) != n) {
		perror("kpread: runs");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (runs[i][1] > most)
			most = runs[i][1];
	char *buf = malloc(most * 8);
	double best = 1e9;
	for (int r = 0; r < reps; r++) {
		double t0 = cpu_now();
		for (size_t i = 0; i < n; i++)
			if (pread(fd, buf, runs[i][1] * 8, runs[i][0] * 8) < 0) {
				perror("kpread: pread");
				return 1;
			}
		double t = cpu_now() - t0;
		if (t < best)
			best = t;
	}
	printf("%.6f\n", best);
	return 0;
}
