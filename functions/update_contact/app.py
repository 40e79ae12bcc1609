"""Update a contact's attributes in Voyado Engage, from API Gateway, SQS or a direct invocation."""

from engage_contact.domain.command import Operation
from engage_contact.handler import make_handler

lambda_handler = make_handler(Operation.UPDATE)
