/**
 * PostgreSQL access for sluice-control: a fixed pool of libpq connections
 * (one per HTTP worker thread, so a request never waits for another's
 * query), the migration runner, and small query helpers. Every query is
 * parameterized (PQexecParams); only the migration runner sends scripts.
 *
 * Connections are opened lazily and re-opened after Postgres went away, so
 * the service recovers by itself: while the database is down, acquiring or
 * querying fails with SL_EDBDOWN, which the API answers with a 503.
 * Thread-safe.
 */
#ifndef CP_STORE_H
#define CP_STORE_H

#include <libpq-fe.h>
#include <stdint.h>

typedef struct cp_pool_s cp_pool_t;

typedef struct {
    int size;                   /* connections the pool may hold */
    int open;                   /* connected now */
    int in_use;                 /* lent to a request now */
    uint64_t acquired;          /* total acquisitions */
    uint64_t waits;             /* acquisitions that had to wait for a free slot */
    uint64_t connect_failures;  /* failed connection attempts */
} cp_pool_stats_t;

/** A pool of at most size connections to url (not connected yet). */
cp_pool_t *cp_pool_new(const char *url, int size);
void cp_pool_free(cp_pool_t *p);

/**
 * Lends a connected connection; waits for a free one. Returns NULL and sets
 * *err to SL_EDBDOWN when the database cannot be reached.
 */
PGconn *cp_pool_acquire(cp_pool_t *p, int *err);

/** Gives a connection back; a broken one is closed and re-opened on next use. */
void cp_pool_release(cp_pool_t *p, PGconn *c);

void cp_pool_stats(cp_pool_t *p, cp_pool_stats_t *out);

/**
 * Runs a parameterized statement (text parameters, NULL for SQL NULL,
 * text results). Returns 0 with *out set (the caller PQclear()s it), or
 * SL_EDBDOWN (connection lost), or SL_EDB with *out still set so that the
 * caller can read the SQLSTATE (NULL on SL_EDBDOWN).
 */
int cp_q(PGconn *c, PGresult **out, const char *sql, int n, const char *const *vals);

/** SQLSTATE of a failed result ("23505" unique violation...), "" if none. */
const char *cp_sqlstate(const PGresult *res);

/** Runs BEGIN / COMMIT / ROLLBACK. Returns 0, SL_EDBDOWN or SL_EDB. */
int cp_tx(PGconn *c, const char *verb);

/* ---- migrations ------------------------------------------------------ */

typedef struct {
    int version;       /* NNNN of NNNN_name.sql */
    const char *name;  /* file name */
    const char *sql;   /* the script */
} cp_migration_t;

/** The migrations built into the binary, in order. */
const cp_migration_t *cp_migrations(int *n);

/**
 * Applies the missing migrations in order, each in its own transaction,
 * under a Postgres advisory lock (replicas may start together: the second
 * waits, then finds nothing to do). Refuses to go on when an applied
 * migration's checksum changed. *applied counts what this call applied.
 * Returns 0, SL_EDBDOWN or SL_EDB (reason logged).
 */
int cp_migrate(const char *url, int *applied);

/** 1 when every built-in migration is recorded in the database. */
int cp_migrations_done(PGconn *c);

#endif
