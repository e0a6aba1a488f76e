"""`migrate`, made safe for the interop tests.

Same as Django's migrate, with two additions:

- It holds a lock for its whole run (a PostgreSQL advisory lock, or an flock next to an
  SQLite file), so several tests that start Django against the same database at once do
  not race on creating `django_migrations` and the auth / session tables.
- It defaults to `--fake-initial`: when a table an initial migration would create already
  exists (for instance `django_session`, created by the Rust store's own `migrate()` with
  Django's DDL), the migration is recorded as applied instead of failing with "relation
  already exists".
"""
import fcntl
import os
from contextlib import contextmanager

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

# Arbitrary constant: pg_advisory_lock key for "sessionbase interop migrate".
_PG_LOCK_KEY = 0x5E55_10B5


@contextmanager
def _migrate_lock(database):
    connection = connections[database]
    vendor = connection.vendor
    if vendor == "postgresql":
        raw = connection.get_new_connection(connection.get_connection_params())
        try:
            raw.autocommit = True
            with raw.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [_PG_LOCK_KEY])
            yield
        finally:
            raw.close()  # ends the session, which releases the lock
    elif vendor == "sqlite" and not connection.is_in_memory_db():
        path = str(connection.settings_dict["NAME"]) + ".migrate-lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
    else:
        yield


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " (interop: locked, --fake-initial by default)"

    def handle(self, *args, **options):
        options["fake_initial"] = True
        with _migrate_lock(options["database"]):
            return super().handle(*args, **options)
