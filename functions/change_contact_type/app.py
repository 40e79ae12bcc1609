"""Change a contact's type (never to Member) in Voyado Engage, from API Gateway, SQS or a direct invocation."""

from engage_contact.domain.command import Operation
from engage_contact.handler import make_handler

lambda_handler = make_handler(Operation.CHANGE_TYPE)
