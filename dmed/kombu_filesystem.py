"""Kombu's filesystem transport, made safe for a publisher and a consumer racing, and cheap to
consume from when messages wait.

Kombu creates the message file, then locks and writes it; a consumer polling in between moves
the empty file away and dies on the empty JSON ("Unrecoverable error"). Here a message is written
under a name the consumer ignores and renamed into place only when complete (rename is atomic).

Kombu's consumer lists and sorts the whole folder for every message it takes, and for every poll
of each queue it consumes (the tasks' and the worker's pidbox, 20 times a second): with messages
waiting (a worker behind its publishers, thousands of files), each message then costs a listing
of them all, so the worker falls further behind the more there is to do. Here one listing serves
every queue of the folder until its messages are taken; the folder is listed again when they are,
or after RELIST_SECONDS at the latest (so a queue with nothing in the last listing, the pidbox,
still hears within that time while another queue's backlog drains). A message is taken by
renaming it within its folder (atomic: of several consumers one gets it), then read and removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import deque
from queue import Empty
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

RELIST_SECONDS = 1.0
SUFFIX = ".msg"


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._waiting: dict[str, deque[str]] = {}  # queue -> its message files, oldest first
        self._listed_at = float("-inf")

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}{SUFFIX}"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f"_{name}.partial")  # does not end in .<queue>.msg
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        """Take the oldest message of the queue that the last listing holds (listing again when
        every queue's is taken, or when it is RELIST_SECONDS old); Empty when there is none."""
        waiting = self._waiting.get(queue)
        stale = monotonic() - self._listed_at > RELIST_SECONDS
        if not waiting and (stale or not any(self._waiting.values())):
            self._list()
            waiting = self._waiting.get(queue)
        while waiting:
            name = waiting.popleft()
            path = os.path.join(self.data_folder_in, name)
            taken = os.path.join(self.data_folder_in, f"_{name}.taken")  # not a .<queue>.msg either
            try:
                os.rename(path, taken)
            except OSError:  # another consumer took it meanwhile
                continue
            try:
                with open(taken, "rb") as file:
                    payload = file.read()
                if self.store_processed:
                    shutil.move(taken, os.path.join(self.processed_folder, name))
                else:
                    os.remove(taken)
            except OSError as exc:
                raise filesystem.ChannelError(f"Cannot read file {path!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()

    def _list(self) -> None:
        """List the folder once for every queue: each one's message files, oldest first (names
        begin with the publishing time; files being written or taken end otherwise)."""
        waiting: dict[str, deque[str]] = {}
        for name in sorted(os.listdir(self.data_folder_in)):
            queue_file = name.partition(".")[2]
            if queue_file.endswith(SUFFIX) and not name.startswith("_"):
                waiting.setdefault(queue_file.removesuffix(SUFFIX), deque()).append(name)
        self._waiting = waiting
        self._listed_at = monotonic()


class Transport(filesystem.Transport):
    Channel = Channel
