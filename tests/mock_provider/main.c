/*
 * mock_provider: a stand-in for provider APIs, for tests and benchmarks.
 * This file only parses the command line; see mock.h for the layout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/mock_provider/mock.h"

static void usage(FILE *f)
{
    fputs("usage: mock_provider [--host 127.0.0.1] [--port N] [--no-record] [--quiet]\n"
          "  --port 0 (the default) picks a free port; the chosen address is printed\n"
          "  on stdout as \"listening on HOST:PORT\".\n",
          f);
}

int main(int argc, char **argv)
{
    mock_config_t cfg = {.host = "127.0.0.1", .port = 0, .record = true, .quiet = false};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--host") == 0 && i + 1 < argc) {
            cfg.host = argv[++i];
        } else if (strcmp(a, "--port") == 0 && i + 1 < argc) {
            char *end;
            long port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "mock_provider: bad --port %s\n", argv[i]);
                return 2;
            }
            cfg.port = (int)port;
        } else if (strcmp(a, "--no-record") == 0) {
            cfg.record = false;
        } else if (strcmp(a, "--quiet") == 0) {
            cfg.quiet = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    /* A client that hangs up mid-reply must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    return mock_server_run(&cfg);
}
