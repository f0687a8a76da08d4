"""Kombu's filesystem transport, made safe for a publisher and a consumer racing.

Kombu creates the message file, then locks and writes it; a consumer polling in between moves
the empty file away and dies on the empty JSON ("Unrecoverable error"). Here a message is written
under a name the consumer ignores and renamed into place only when complete (rename is atomic).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f"_{name}.partial")  # does not end in .<queue>.msg
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
