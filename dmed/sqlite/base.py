"""Django's SQLite backend, with writers taking turns.

SQLite has one write lock, taken here at `BEGIN IMMEDIATE`. A writer that finds it taken waits in
SQLite's busy handler, which sleeps and retries (1, 2, 5 … up to 100 ms between tries): while it
sleeps the lock may be free, and a writer that arrives later takes it. Under load a create waited
seconds behind later ones (benchmarks/load.py, README's Performance). Here a transaction first
takes an exclusive `flock` on a file beside the database, which the kernel hands on as soon as it is
released, and lets it go when the transaction ends. SQLite's own lock still guards the data: the
`flock` only decides who goes next, so a process that does not take it (another program, the
`sqlite3` shell) is still safe, as are writes outside a transaction (autocommit statements, which
SQLite's busy handler serves as before).

Measured (benchmarks/load.py at 8 clients, README's Performance): a create's p95 462 -> 55 ms, a
conditional create's 1,505 -> 72 ms."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3

from django.db.backends.sqlite3 import base

CHECKPOINT_BYTES = 4 * 1024 * 1024
logger = logging.getLogger(__name__)


class DatabaseWrapper(base.DatabaseWrapper):
    _turn: int | None = None  # the lock file's descriptor, held while a transaction is open

    def _start_transaction_under_autocommit(self):
        self._turn_take()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._turn_give()
            raise

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        # SQLite checkpoints the log into the database inside the COMMIT that takes it past 1,000
        # pages, which would keep the turn for as long: this connection checkpoints after it.
        connection.execute("PRAGMA wal_autocheckpoint=0")
        return connection

    def _commit(self):
        try:
            committed = super()._commit()
        finally:
            self._turn_give()
        self._checkpoint()
        return committed

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the database once it holds CHECKPOINT_BYTES, as SQLite
        would at its default of 1,000 pages, but after the turn is given back (PASSIVE: it waits
        for no reader and no writer, and does what it can)."""
        if self.connection is None or self.is_in_memory_db():
            return
        try:
            size = os.stat(f"{self.settings_dict['NAME']}-wal").st_size
        except OSError:
            return
        if size >= CHECKPOINT_BYTES:
            try:
                self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:  # the commit stands; a later one checkpoints
                logger.warning("could not checkpoint %s", self.settings_dict["NAME"], exc_info=True)

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._turn_give()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._turn_give()

    def _turn_take(self) -> None:
        if self.is_in_memory_db() or self._turn is not None:
            return
        # A descriptor of this connection's own, opened for this turn: a lock is per open file,
        # so threads and forked processes never share one by inheriting it.
        fd = os.open(f"{self.settings_dict['NAME']}.writers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._turn = fd

    def _turn_give(self) -> None:
        fd, self._turn = self._turn, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor of the open file releases its lock
