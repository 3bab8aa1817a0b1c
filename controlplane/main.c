/*
 * sluice-control: the control plane (admin REST API on libmicrohttpd,
 * PostgreSQL store, snapshot publisher). A stub until the control-plane
 * issue: the gateway runs standalone, header-driven, without it.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("sluice-control 0.1.0 (stub)\n");
        return 0;
    }
    fprintf(stderr, "sluice-control: not implemented yet; run sluice-gateway standalone\n");
    return 1;
}
