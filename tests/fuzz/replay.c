/*
 * replay.c — runs a fuzz target over every file of the corpus directories given as arguments,
 * without libFuzzer, so `meson test` replays the corpora under ASan/UBSan on any compiler.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *data = malloc(cap);
	size_t n;
	while (data && (n = fread(data + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *bigger = realloc(data, cap *= 2);
			if (!bigger) {
				free(data);
				data = NULL;
			}
			data = bigger;
		}
	}
	fclose(f);
	if (!data)
		return -1;
	/* An exact-size copy so ASan catches reads one past the input. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(data);
		return -1;
	}
	memcpy(exact, data, len);
	free(data);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

int main(int argc, char **argv)
{
	int files = 0, errors = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
			struct stat st;
			if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			if (replay_file(path) != 0)
				errors++;
			files++;
		}
		closedir(d);
	}
	fprintf(stderr, "replayed %d inputs, %d unreadable\n", files, errors);
	return errors || files == 0 ? 1 : 0;
}
