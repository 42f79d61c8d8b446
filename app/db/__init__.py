"""Database layer: models, engine, repositories, migrations."""
