"""The shared layer of engage-contact-functions: everything the three functions have in common.

One module per idea: `attributes` (the sparse payload), `command`, `client`
(Engage), `errors`, `settings`, `credentials`, `operations`, and the trigger
adapters `api_gateway`, `sqs` and `handler`.
"""

__version__ = "0.1.0"
