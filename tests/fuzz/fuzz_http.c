/* libFuzzer target: the HTTP/1.x start-line parser, as the join drives it. */
#include <stdint.h>
#include <string.h>
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_msg m;
	char line[HTTP_MAX_PATH + 32];

	for (int full = 0; full < 2; full++) {
		const uint8_t *p = data;
		size_t len = size;

		while (http_next(&p, &len, full, &m))
			http_request_line(&m, line, sizeof(line));
	}
	return 0;
}
