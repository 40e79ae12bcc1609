"""Privacy: erasure and data requests (the erase function's work), the records that say whom the deployment's
items name (a shop's customers, erased persons), and the audit trail; the shops' privacy topics as commands.

May import: `..domain`, `..errors`, `..observability`, `..aws` (the table's conditional write), `..engage`
(the client's delete). Never `..ecommerce` (which hooks these topics into its routes) or anything above it.
"""
