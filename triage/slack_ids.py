"""What a Slack id looks like: one rule for config.yaml, the client and the tick."""

from __future__ import annotations

import re

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")  # public, private, direct-message channels
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")  # users (W…: Enterprise Grid); a DM goes to one
MENTION_ID = re.compile(r"[SUW][A-Z0-9]{2,}")  # what a mention may name: user groups (S…) and users
# What slack.channel may be besides a name: a channel, group or DM id, or a user id (a direct
# message). Slack's ids are 9 characters or more, which keeps a name in capitals from passing.
CONVERSATION_ID = re.compile(r"[CGDUW][A-Z0-9]{8,}")
