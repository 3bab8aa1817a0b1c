"""
A real, private PostgreSQL server for integration tests.

Python 3 standard library only (no psycopg): the server is driven by
tools/pg.sh and SQL goes through the `psql` client.

    from pgserver import shared
    url = shared().create_database("t_quota_1")   # a fresh empty database

shared() starts one server per test process on first use and stops it at
exit; each test takes its own database, so tests do not see each other's
rows. A test that kills or restarts Postgres ("Postgres goes away") makes its
own PgServer instead, so that it does not disturb the shared one.

Each server lives in a fresh folder: under $SLUICE_PG_DIR_BASE when set (the
build tree), else under the system temporary folder. As root, tools/pg.sh runs
the server as the `postgres` system user (initdb and postgres refuse root) and
moves the cluster to /tmp when that user cannot reach the folder; the server
gets its own socket folder, so nothing needs /var/run/postgresql. It listens
on 127.0.0.1 only, on a free port, with trust authentication for the
`postgres` role.
"""
import atexit
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PG_SH = os.path.normpath(os.path.join(HERE, "..", "..", "tools", "pg.sh"))

FIELD_SEP = "\x1f"   # ASCII unit separator: never in ordinary test data
PG_SH_TIMEOUT = 180  # initdb + start on a loaded CI machine, with margin
PSQL_TIMEOUT = 120

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_counter = itertools.count(1)


class PgError(RuntimeError):
    """tools/pg.sh or psql failed; the message carries their stderr."""


def _find_psql():
    path = shutil.which("psql")
    if path:
        return path
    # Debian's /usr/bin/psql is a wrapper; the real client is here.
    for d in sorted(os.listdir("/usr/lib/postgresql"), reverse=True,
                    key=lambda v: [int(x) for x in re.findall(r"\d+", v)]):
        p = os.path.join("/usr/lib/postgresql", d, "bin", "psql")
        if os.access(p, os.X_OK):
            return p
    raise PgError("no psql client (apt-get install postgresql-client)")


def unique_name(prefix="t"):
    """A database name unique in this process and across processes."""
    return "%s_%d_%d_%d" % (prefix, os.getpid(), int(time.time() * 1000) % 10**8,
                            next(_counter))


class PgServer:
    """One private PostgreSQL server in its own temporary folder.

    start() / stop() (stop deletes everything), restart() (clean shutdown and
    start), kill() (SIGKILL the postmaster: Postgres goes away), start_again()
    (the same data and port after kill() or stop_keep()), url(db),
    create_database(name), drop_database(name), psql(sql, db),
    query_rows(sql, db).
    """

    def __init__(self, fsync=True):
        # fsync=False trades durability against an OS crash (never a server
        # crash) for faster commits; the default is a real server.
        self.fsync = fsync
        self.dir = None
        self.port = None
        self._psql = _find_psql()

    # -- lifecycle -------------------------------------------------------

    def _pg_sh(self, *args):
        env = dict(os.environ)
        env["SLUICE_PG_FSYNC"] = "on" if self.fsync else "off"
        try:
            r = subprocess.run([PG_SH, *args], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=PG_SH_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise PgError("tools/pg.sh %s timed out: %s" % (" ".join(args), e.stderr)) from e
        if r.returncode != 0:
            raise PgError("tools/pg.sh %s failed (%d):\n%s%s"
                          % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def _start(self, port=None):
        args = ["start", self.dir] + ([str(port)] if port else [])
        r = self._pg_sh(*args)
        url = r.stdout.strip().splitlines()[-1]
        m = re.match(r"^postgresql://postgres@127\.0\.0\.1:(\d+)/postgres$", url)
        if not m:
            raise PgError("tools/pg.sh start printed no URL:\n%s%s" % (r.stdout, r.stderr))
        self.port = int(m.group(1))
        # Only the unusual deserves a line: the /tmp fallback, a port retry.
        for line in r.stderr.splitlines():
            if "initdb" not in line:
                print(line, file=sys.stderr)

    def start(self):
        """Initialise and start a server in a fresh folder on a free port."""
        if self.dir is not None:
            raise PgError("already started (%s)" % self.dir)
        base = os.environ.get("SLUICE_PG_DIR_BASE") or None
        if base:
            os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="sluice-pg-", dir=base)
        # mkdtemp makes it 0700; as root the postgres user must traverse it.
        os.chmod(self.dir, 0o755)
        try:
            self._start()
        except BaseException:
            self._destroy()
            raise
        return self

    def stop(self):
        """Stop the server and delete its folder. Idempotent."""
        if self.dir is None:
            return
        self._destroy()

    def _destroy(self):
        d, self.dir = self.dir, None
        try:
            subprocess.run([PG_SH, "destroy", d], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=PG_SH_TIMEOUT)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def stop_keep(self):
        """Clean (fast) shutdown, keeping the data for start_again()."""
        self._need_dir()
        self._pg_sh("stop", self.dir)

    def restart(self):
        """Clean shutdown, then start the same data on the same port."""
        self.stop_keep()
        self.start_again()

    def start_again(self):
        """Start the same data folder on the same port (after kill() or
        stop_keep()); crash recovery runs if it was killed."""
        self._need_dir()
        self._start(self.port)

    def postmaster_pid(self):
        """The pid of the running postmaster, or None."""
        self._need_dir()
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def kill(self):
        """SIGKILL the postmaster, as a crash would: clients lose their
        connections (its children exit on postmaster death) and new ones are
        refused until start_again()."""
        pid = self.postmaster_pid()
        if pid is None:
            raise PgError("not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid):
            if time.monotonic() > deadline:
                raise PgError("postmaster %d survived SIGKILL" % pid)
            time.sleep(0.01)

    def running(self):
        return self.dir is not None and self.postmaster_pid() is not None

    def _need_dir(self):
        if self.dir is None:
            raise PgError("not started")

    # -- databases and SQL -----------------------------------------------

    def url(self, db="postgres"):
        """The libpq URL of database db (trust auth, role postgres)."""
        if self.port is None:
            raise PgError("not started")
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, db)

    def create_database(self, name=None):
        """Create an empty database (a unique name when None); return its URL."""
        name = name or unique_name()
        if not _NAME_RE.match(name):
            raise ValueError("database name must match %s: %r" % (_NAME_RE.pattern, name))
        self.psql('CREATE DATABASE "%s"' % name)
        return self.url(name)

    def drop_database(self, name):
        if not _NAME_RE.match(name):
            raise ValueError("bad database name %r" % name)
        self.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)

    def _run_psql(self, sql, db, extra):
        # SQL goes through stdin, as a file would: several statements run one
        # by one (CREATE DATABASE cannot run inside the implicit transaction
        # of a multi-statement -c) and the first error stops everything.
        cmd = [self._psql, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
               *extra, "-d", self.url(db), "-f", "-"]
        env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGCLIENTENCODING="UTF8")
        for k in ("PGOPTIONS", "PGSERVICE", "PGPASSWORD", "PGSSLMODE"):
            env.pop(k, None)
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True,
                           encoding="utf-8", env=env, timeout=PSQL_TIMEOUT)
        if r.returncode != 0:
            raise PgError("psql on %s failed (%d): %s\nSQL: %s"
                          % (db, r.returncode, r.stderr.strip(), sql[:2000]))
        return r.stdout

    def psql(self, sql, db="postgres"):
        """Run SQL (one or more statements, or a whole migration file's
        text) with psql; return its stdout (unaligned tuples, one row per
        line, columns separated by |). Raises PgError on any SQL error."""
        return self._run_psql(sql, db, [])

    def psql_file(self, path, db="postgres"):
        with open(path, encoding="utf-8") as f:
            return self.psql(f.read(), db)

    def query_rows(self, sql, db="postgres"):
        """Rows of the result(s) as lists of strings. NULL reads as ''.
        Records are NUL-separated, so values may hold newlines and |."""
        # psql -A -t -0 ends every record with NUL, the last one included.
        out = self._run_psql(sql, db, ["-F", FIELD_SEP, "-0"])
        if not out:
            return []
        if out.endswith("\0"):
            out = out[:-1]
        return [rec.split(FIELD_SEP) for rec in out.split("\0")]

    def scalar(self, sql, db="postgres"):
        """The first column of the first row, or None when there is no row."""
        rows = self.query_rows(sql, db)
        return rows[0][0] if rows else None


def _alive(pid):
    """True when pid runs and is not a zombie (a killed postmaster stays a
    zombie where nothing reaps orphans, as under some container PID 1s)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


_shared = None
_shared_pid = None
_shared_lock = threading.Lock()


def shared():
    """The PgServer of this test process, started on first use and stopped
    at exit. Give each test its own database: create_database()."""
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid():
            srv = PgServer()
            srv.start()
            _shared, _shared_pid = srv, os.getpid()
            me = os.getpid()
            # Not in forked children: the server belongs to its starter.
            atexit.register(lambda: os.getpid() == me and srv.stop())
        return _shared
