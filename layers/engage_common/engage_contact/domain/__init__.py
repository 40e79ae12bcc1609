"""The contract's rules, with no I/O: attribute names and values, the sparse payload, contacts and lookups, the command.

May import: `..errors` only. Everything above (engage, aws, triggers, ecommerce) may import it.
"""
