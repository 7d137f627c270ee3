"""The process's id makers: the domain's layouts wired to the system clock and the system's entropy."""

from __future__ import annotations

import os
import time

from consentry.domain.clustered_ids import ClusteredIds

new_clustered_id = ClusteredIds(time.time_ns, os.urandom)  # user and registration request ids
new_token_locator = ClusteredIds(time.time_ns, os.urandom).locator  # the head of every opaque token
