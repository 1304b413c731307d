"""Storage: SQLAlchemy tables, engine/session, Alembic migrations. Only this package imports sqlalchemy."""
