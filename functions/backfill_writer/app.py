"""Write a backfill's rows into Voyado Engage from its own queue: new customers in bulk, the rest one by one."""

from engage_contact.backfill_writer import make_writer_handler

lambda_handler = make_writer_handler()
