"""Whether an erasure is passed on to Engage: each shop's choice in the shops document (its `erasure` field),
carried by the command the route queues; a retailer's own erase command says it itself. Off by default."""

from __future__ import annotations

RECORD = "record"  # our own records only: nothing is sent to Engage
ERASE = "erase"  # Engage's delete for the contact the key finds, never a Member
ERASE_MEMBERS = "erase-including-members"  # Members too: their loyalty history is the retailer's to give up
POLICIES = (RECORD, ERASE, ERASE_MEMBERS)
