"""Storage: tables, engine and sessions, Alembic migrations (SQLAlchemy lives here)."""
