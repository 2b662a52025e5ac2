"""What routes match a sync on, read from Hightouch: the one resolver the tick and the
`routes` command share."""

from __future__ import annotations

from triage.config import Config
from triage.hightouch import HightouchClient
from triage.models import Sync
from triage.routing import Target, needs_names


def route_target(client: HightouchClient, config: Config, sync: Sync) -> Target:
    """The sync, and its destination's and model's names and type when some route matches
    on them (read once per tick by the client's cache; not read at all otherwise)."""
    if not needs_names(config):
        return Target(sync)
    return Target(
        sync,
        destination=client.destination_name(sync.destination_id),
        destination_type=client.destination_type(sync.destination_id),
        model=client.model_name(sync.model_id),
    )
