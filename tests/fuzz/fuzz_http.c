/* libFuzzer target: the HTTP/1.x start-line parser, as the join drives it. */
#include <stdint.h>
#include <string.h>
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_msg m;
	size_t used;
	char line[HTTP_MAX_PATH + 32];

	for (int full = 0; full < 2; full++) {
		const uint8_t *p = data;
		size_t len = size;

		while (len && http_parse(p, len, full, &m, &used) != HTTP_NONE) {
			http_request_line(&m, line, sizeof(line));
			if (!used || used > len)
				break;
			p += used;
			len -= used;
		}
	}
	return 0;
}
