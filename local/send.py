"""`python -m local.send OPERATION 'COMMAND_JSON' [--queue]`: send a command to the running local stack.

OPERATION is update, promote or contact-type. The command is signed with the
local webhook secret and posted to the stack's API; with --queue it is put on
the operation's FIFO queue instead (the contact as message group, a fresh
deduplication id). Prints the status and the body.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

import requests

from .stack import HOST, REGION, WEBHOOK_SECRET, port_from_env
from .template import LAYER, read_stack

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

OPERATIONS = ("update", "promote", "contact-type")


def _aws(service: str):
    import boto3

    return boto3.client(service, endpoint_url=f"http://{HOST}:{port_from_env('MOTO_PORT')}", region_name=REGION,
                        aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip


def send_api(operation: str, body: str) -> tuple[int, str]:
    from .signing import signed_headers

    secret = _aws("secretsmanager").get_secret_value(SecretId=WEBHOOK_SECRET)["SecretString"]
    headers = {"Content-Type": "application/json", **signed_headers(secret, body)}
    response = requests.post(f"http://{HOST}:{port_from_env('API_PORT')}/contacts/{operation}", data=body.encode(),
                             headers=headers, timeout=60)  # fmt: skip
    return response.status_code, response.text


def send_queue(operation: str, body: str) -> tuple[int, str]:
    from engage_contact.domain.contacts import message_group

    spec = read_stack().function_for_route("POST", f"/contacts/{operation}")
    sqs = _aws("sqs")
    url = sqs.get_queue_url(QueueName=read_stack().queues[spec.queue].name)["QueueUrl"]
    try:
        group = message_group(json.loads(body))
    except (ValueError, AttributeError):
        group = "unparsable-command"
    answer = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group,
                              MessageDeduplicationId=str(uuid.uuid4()))  # fmt: skip
    return 200, json.dumps({"queued": url.rsplit("/", 1)[-1], "messageId": answer["MessageId"], "group": group})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.send", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("operation", choices=OPERATIONS)
    parser.add_argument("command", help="the command as JSON text")
    parser.add_argument("--queue", action="store_true", help="enqueue instead of calling the API")
    args = parser.parse_args(argv)
    try:
        status, text = (send_queue if args.queue else send_api)(args.operation, args.command)
    except requests.ConnectionError:
        where = f"{HOST}:{port_from_env('API_PORT')}"
        print(f"local.send: nothing answers on {where}: is `make run` running?", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"local.send: {type(exc).__name__}: {exc} (is `make run` running?)", file=sys.stderr)
        return 2
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    print(status)
    print(text)
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
