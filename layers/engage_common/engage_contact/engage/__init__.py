"""Voyado Engage's contact API: the only code that knows its paths, headers and answers.

`client` (the calls the contract makes, a few lines each) stands on `transport` (send one
request), `answers` (a status and body turned into an answer or one of the contract's errors),
`retry` (the deadline, and whether and how long to wait before another try), `pacing`, and
`versions` (what differs between API v2 and v3: only the client acts on it; settings checks the name).
May import: `..domain`, `..errors`, `..http_session`. Never AWS, triggers or e-commerce.
"""
