"""The database's own guard on the audit log: UPDATE and DELETE of its rows are refused.

The model refuses them too (:class:`annotations.models.AuditEvent`); the triggers also
stop raw SQL, the ORM's cascades and any other client of the database. Installed by
migration ``annotations.0002``. PostgreSQL: a row-level ``BEFORE UPDATE OR DELETE``
trigger whose function raises (PostgreSQL manual, "CREATE TRIGGER" and "PL/pgSQL:
Errors and Messages"); TRUNCATE, a table owner's statement, is not a row operation and
is not stopped. SQLite: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers with
``RAISE(ABORT, ...)`` (sqlite.org/lang_createtrigger.html). SQLite drops a table's
triggers with the table, and Django's SQLite schema editor rebuilds a table to alter
it: a later migration that alters ``AuditEvent`` must call :func:`install` again
(a test checks the guard after all migrations, on both databases).
"""

TABLE = "annotations_auditevent"
MESSAGE = "the audit log is append-only"

POSTGRESQL_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP;
    END;
    $$ LANGUAGE plpgsql
    """,
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"""
    CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()
    """,
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
]

SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {operation} refused'); END
    """
    for operation in ("UPDATE", "DELETE")
]
SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation}" for operation in ("update", "delete")
]

STATEMENTS = {
    "postgresql": (POSTGRESQL_INSTALL, POSTGRESQL_REMOVE),
    "sqlite": (SQLITE_INSTALL, SQLITE_REMOVE),
}


def install(connection):
    """Create the triggers on ``connection``'s database (other databases: nothing)."""
    _run(connection, STATEMENTS.get(connection.vendor, ([], []))[0])


def remove(connection):
    """Drop the triggers (to reverse the migration)."""
    _run(connection, STATEMENTS.get(connection.vendor, ([], []))[1])


def _run(connection, statements):
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
