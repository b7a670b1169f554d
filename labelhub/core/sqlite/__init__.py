"""The embedded server's SQLite backend (see base.py): Django's, with connections pooled per process."""
