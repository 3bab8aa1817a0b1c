#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/log.h"
#include "controlplane/store/store.h"

/* One constant for every replica: pg_advisory_lock serialises start-ups. */
#define MIGRATE_LOCK_ID "7308335227785110017"

static const sl_log_ctx_t log_ctx = {.action = "migrating the database"};

static int exec_simple(PGconn *c, const char *sql, int nparams, const char *const *vals,
                       PGresult **keep)
{
    PGresult *res = NULL;
    int ret = cp_q(c, &res, sql, nparams, vals);
    if (ret == SL_EDB)
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "%s", PQresultErrorMessage(res));
    if (keep != NULL && ret == 0)
        *keep = res;
    else
        PQclear(res);
    return ret;
}

/* Migrations are multi-statement scripts from our own files, which only the
 * simple query protocol runs; nothing in them comes from input. */
static int exec_script(PGconn *c, const char *sql)
{
    int ret = 0;
    if (PQsendQuery(c, sql) != 1)
        return PQstatus(c) != CONNECTION_OK ? SL_EDBDOWN : SL_EDB;
    for (PGresult *res = PQgetResult(c); res != NULL; res = PQgetResult(c)) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && ret == 0) {
            sl_log(SL_LOG_ERROR, &log_ctx, 0, "%s", PQresultErrorMessage(res));
            ret = PQstatus(c) != CONNECTION_OK ? SL_EDBDOWN : SL_EDB;
        }
        PQclear(res);
    }
    return ret;
}

static void checksum(const char *sql, char out[65])
{
    uint8_t md[SL_SHA256_LEN];
    sl_sha256(sql, strlen(sql), md);
    sl_hex_encode(md, sizeof(md), out);
}

static int apply_one(PGconn *c, const cp_migration_t *m)
{
    char ver[16], sum[65];
    int ret;

    snprintf(ver, sizeof(ver), "%d", m->version);
    checksum(m->sql, sum);
    ret = exec_simple(c, "BEGIN", 0, NULL, NULL);
    if (ret != 0)
        return ret;
    ret = exec_script(c, m->sql);
    if (ret == 0) {
        const char *vals[] = {ver, m->name, sum};
        ret = exec_simple(c,
                          "INSERT INTO schema_migrations (version, name, checksum) "
                          "VALUES ($1::int, $2, $3)",
                          3, vals, NULL);
    }
    if (ret == 0)
        ret = exec_simple(c, "COMMIT", 0, NULL, NULL);
    if (ret != 0) {
        exec_simple(c, "ROLLBACK", 0, NULL, NULL);
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "migration %s failed; nothing of it was applied",
               m->name);
        return ret;
    }
    sl_log(SL_LOG_INFO, &log_ctx, 0, "applied migration %s", m->name);
    return 0;
}

int cp_migrate(const char *url, int *applied)
{
    PGresult *res = NULL;
    int n, ret;
    const cp_migration_t *ms = cp_migrations(&n);
    PGconn *c = PQconnectdb(url);

    *applied = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        char line[256];
        const char *why = PQerrorMessage(c);
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(why, "\n"), why);
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "cannot connect to Postgres: %s", line);
        PQfinish(c);
        return SL_EDBDOWN;
    }
    ret = exec_simple(c, "SET client_min_messages = warning", 0, NULL, NULL);
    if (ret == 0)
        ret = exec_simple(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_ID ")", 0, NULL, NULL);
    if (ret != 0)
        goto Exit;
    ret = exec_simple(c,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version integer PRIMARY KEY, name text NOT NULL,"
                      " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                      0, NULL, NULL);
    if (ret == 0)
        ret = exec_simple(c, "SELECT version, checksum FROM schema_migrations ORDER BY version", 0,
                          NULL, &res);
    if (ret != 0)
        goto Unlock;
    for (int i = 0; i < n; i++) {
        int found = -1;
        for (int r = 0; r < PQntuples(res); r++)
            if (strtol(PQgetvalue(res, r, 0), NULL, 10) == ms[i].version)
                found = r;
        if (found >= 0) {
            char sum[65];
            checksum(ms[i].sql, sum);
            if (strcmp(sum, PQgetvalue(res, found, 1)) != 0) {
                sl_log(SL_LOG_ERROR, &log_ctx, 0,
                       "migration %s changed after it was applied; refusing to go on "
                       "(add a new migration instead)",
                       ms[i].name);
                ret = SL_EDB;
                goto Unlock;
            }
            continue;
        }
        ret = apply_one(c, &ms[i]);
        if (ret != 0)
            goto Unlock;
        (*applied)++;
    }
Unlock:
    exec_simple(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_ID ")", 0, NULL, NULL);
Exit:
    PQclear(res);
    PQfinish(c);
    return ret;
}

int cp_migrations_done(PGconn *c)
{
    PGresult *res = NULL;
    int n, done = 0;
    const cp_migration_t *ms = cp_migrations(&n);
    char want[16];

    snprintf(want, sizeof(want), "%d", n > 0 ? ms[n - 1].version : 0);
    const char *vals[] = {want};
    if (cp_q(c, &res, "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1, vals) == 0)
        done = PQntuples(res) == 1;
    PQclear(res);
    return done;
}
