"""Celery's filesystem broker (the embedded default), with messages that appear whole.

kombu's filesystem transport creates a message's file under its final name and then writes it,
so a worker polling the folder can take the file while it is still empty; the worker then fails
to decode it and stops consuming, and every later task waits. Here a message is written under a
name the worker ignores (it starts with a dot) and renamed into place when complete: a rename
within one folder is atomic, so a worker sees a whole message or none.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The same name kombu gives a message (time first, so the folder sorts in order).
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "xb") as out:
                out.write(str_to_bytes(dumps(payload)))
            os.rename(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add a message to {self.data_folder_out}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
