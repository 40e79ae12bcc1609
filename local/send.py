"""`python -m local.send ...`: talk to the stack `make run` started, from another shell.

    update|promote|contact-type 'COMMAND_JSON' [--queue]
        sign the command with the stack's webhook secret and post it to the API, or
        with --queue put it on the operation's FIFO queue (the contact as message
        group, a fresh deduplication id) and print what SQS answered
    shopify|woocommerce FILE [--topic TOPIC]
        post FILE (the topic's JSON body, or an API event such as
        events/update_contact/shopify-2025-10-email-consent.json) to /webhooks/PLATFORM,
        as the first shop of the stack's shops document, signed the platform's
        way with that shop's secret; --topic names the topic (a Shopify one:
        customers/create, customers/update, customers/enable, customers/disable,
        customers/email_marketing_consent_update, customers/marketing_consent_update),
        else the file's own, else the customer update
    invoke update|promote|contact-type|erase FILE|JSON
        invoke the operation's function directly, as Step Functions or the SDK does (the
        event is the command, e.g. events/update_contact/direct.json), through the Lambda
        Invoke endpoint of the stack's API stand-in (POST /2015-03-31/functions/NAME/invocations);
        print its result, or the error's name and message (exit status 1)
    workflow FILE|JSON
        run an input (events/contact_workflow/*.json) through statemachine/contact_workflow.asl.json,
        interpreted here by moto's Step Functions (local.workflow), each task invoking the
        stack's function as above; print each state's outcome and the final status
    dead-letters [QUEUE] [--bodies]
        list the dead-lettered messages with their reasons (id, group, errorType,
        errorMessage; the bodies, which hold personal data, only with --bodies)
    redrive [QUEUE]
        send dead-lettered messages back to their source queue, once the cause is fixed

QUEUE is a function's short name (update, promote, contact-type, erase, backfill), its
name (erase_contact) or a queue's name; without it, every queue. The stack's addresses
come from the file it leaves in the checkout (.local-stack.json, or LOCAL_STACK_FILE);
API_PORT and MOTO_PORT, both set, reach the stack they name instead (a second stack's
banner gives both); one of them alone must be the file's stack, or nothing is sent.
Which stack was reached is said on stderr; without a file or ports, the default ports
are tried, and said to be (on a shared machine they may be another's stack).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
from botocore.exceptions import EndpointConnectionError

from .stack import (
    DEFAULT_PORTS,
    DIGEST_KEY_SECRET,
    HOST,
    LOCAL_SHOPS,
    REGION,
    SHOPS_SECRET,
    WEBHOOK_SECRET,
    process_alive,
    stack_file,
)
from .template import LAYER, StackSpec, read_stack

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

OPERATIONS = ("update", "promote", "contact-type")
PLATFORMS = tuple(LOCAL_SHOPS)
REDRIVE_ATTRIBUTES = (
    "errorType",
    "errorMessage",
    "sourceMessageId",
)  # the last failure's reason, not part of the message


# the functions an operation's short name stands for: `invoke` takes these, `dead-letters` and `redrive` these and
# the writer of the backfill's rows (its queue is the backfill's)
INVOKED = {
    "update": "update_contact",
    "promote": "promote_contact",
    "contact-type": "change_contact_type",
    "erase": "erase_contact",
}
SHORT_NAMES = {**INVOKED, "backfill": "backfill_writer"}


class StackNotFound(RuntimeError):
    pass


class ShopsHolder(Protocol):
    """What `platform_shop` reads: the shops documents' secret names and a client to read them with."""

    platform_secrets: dict[str, str]

    def client(self, service: str) -> Any: ...


@dataclass
class Stack:
    """Where the running stack is: what `make run` left in its addresses file, or the default ports."""

    api: str
    moto: str
    region: str = REGION
    webhook_secret: str = WEBHOOK_SECRET
    digest_key_secret: str = DIGEST_KEY_SECRET
    platform_secrets: dict[str, str] = field(default_factory=dict)
    source: str = "the default ports"

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.moto,
            region_name=self.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


PORT_VARIABLES = {"API_PORT": "api", "MOTO_PORT": "moto"}


def find_stack(path: Path | None = None) -> Stack:
    """The running stack's addresses: its file if there is one, else API_PORT and MOTO_PORT, else the default ports.

    One stack, never two: API_PORT and MOTO_PORT both set (a second stack's banner gives both) name another
    stack than the file's; one of them alone must agree with the file, or nothing is sent (its API and the other
    stack's secrets would not match)."""
    path = path or stack_file()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        data = None
    except ValueError:
        raise StackNotFound(f"{path} is not the file `make run` writes; remove it and start the stack again") from None
    if data is not None and not process_alive(int(data.get("pid", 0))):
        raise StackNotFound(
            f"{path} names a stack (pid {data.get('pid')}) that is no longer running: "
            f"start it with `make run` (or remove the file)"
        )
    given = {v: f"http://{HOST}:{int(os.environ[v])}" for v in PORT_VARIABLES if os.environ.get(v)}
    if data is not None and all(data.get(PORT_VARIABLES[v]) == url for v, url in given.items()):
        given = {}  # the file's stack, which the ports given agree with
    if data is not None and len(given) == 1:
        ((variable, url),) = given.items()
        other = next(v for v in PORT_VARIABLES if v != variable)
        raise StackNotFound(
            f"{variable} ({url}) is not the stack in {path} (API {data['api']}, AWS {data['moto']}), and "
            f"{other} is not set: set both API_PORT and MOTO_PORT to reach another stack (its banner gives "
            f"both), or neither to reach the one in {path}"
        )
    if data is not None and not given:
        return Stack(
            api=data["api"],
            moto=data["moto"],
            region=data.get("region", REGION),
            webhook_secret=data.get("webhookSecret", WEBHOOK_SECRET),
            digest_key_secret=data.get("digestKeySecret", DIGEST_KEY_SECRET),
            platform_secrets=data.get("platformSecrets", {}),
            source=str(path),
        )
    stack = Stack(
        api=f"http://{HOST}:{DEFAULT_PORTS['API_PORT']}",
        moto=f"http://{HOST}:{DEFAULT_PORTS['MOTO_PORT']}",
        platform_secrets=dict.fromkeys(LOCAL_SHOPS, SHOPS_SECRET),
    )
    for variable, url in given.items():
        setattr(stack, PORT_VARIABLES[variable], url)
    if len(given) == len(PORT_VARIABLES):
        stack.source = "API_PORT and MOTO_PORT" + (f" (not the stack in {path})" if data is not None else "")
    elif given:
        (variable,) = given
        other = next(v for v in PORT_VARIABLES if v != variable)
        stack.source = f"{variable}, and the default port for {other} (no {path.name}, no `make run` of this checkout)"
    else:
        stack.source = f"the default ports: no {path.name}, so no `make run` of this checkout is running"
    return stack


def reached(stack: Stack) -> str:
    """The line that says which stack a command went to."""
    return f"local.send: to the stack at {stack.api} (API), {stack.moto} (AWS), from {stack.source}"


# --- commands through the API or a queue ------------------------------------------------------------
def send_api(stack: Stack, operation: str, body: str) -> tuple[int, str]:
    from .signing import signed_headers

    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.webhook_secret)["SecretString"]
    headers = {"Content-Type": "application/json", **signed_headers(secret, body)}
    response = requests.post(f"{stack.api}/contacts/{operation}", data=body.encode(), headers=headers, timeout=60)
    return response.status_code, response.text


def send_queue(stack: Stack, operation: str, body: str) -> tuple[str, dict[str, Any]]:
    """Enqueue the command; the first line to print and what SQS answered."""
    from engage_contact.domain.contacts import message_group

    use_digest_key(stack)
    spec = read_stack()
    function = spec.function_routed("POST", f"/contacts/{operation}")
    sqs = stack.client("sqs")
    name = spec.queue_of(function).name
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    try:
        group = message_group(json.loads(body))
    except (ValueError, AttributeError):
        group = "unparsable-command"
    dedup_id = str(uuid.uuid4())
    answer = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup_id)
    return f"queued on {name}", {
        "queued": name,
        "messageId": answer["MessageId"],
        "sequenceNumber": answer.get("SequenceNumber"),
        "group": group,
        "deduplicationId": dedup_id,
    }


def use_digest_key(stack: Stack) -> None:
    """Key this process's digests (a command's message group) with the stack's digest key, as its functions do."""
    from engage_contact.aws.secrets import digest_key_from_secret
    from engage_contact.domain import digest_key

    value = stack.client("secretsmanager").get_secret_value(SecretId=stack.digest_key_secret)["SecretString"]
    key = digest_key_from_secret(value)
    digest_key.install(lambda: key)


# --- platform webhooks ---------------------------------------------------------------------------------
def read_platform_file(path: Path) -> tuple[bytes, dict[str, str]]:
    """The raw body to sign and the headers a file carries: an API event's body and headers, or the file itself."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except ValueError:
        return raw, {}
    if isinstance(data, dict) and "httpMethod" in data and isinstance(data.get("body"), str):  # an API event
        return data["body"].encode(), {k.lower(): v for k, v in (data.get("headers") or {}).items()}
    return raw, {}


def platform_shop(stack: ShopsHolder, platform: str) -> tuple[str, str]:
    """The platform's first shop in the stack's shops document, and its signing secret (the current one)."""
    name = stack.platform_secrets.get(platform)
    if not name:
        raise StackNotFound(
            f"the stack's shops document lists no {platform} shop (LOCAL_SHOPS_DOCUMENT), or the "
            "stack was started with its own ShopsSecretArn: sign with that shop's secret "
            "yourself"
        )
    document = json.loads(stack.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
    shop, settings = next(iter(document[platform].items()))
    secret = settings["secret"]
    return shop, secret["current"] if isinstance(secret, dict) else secret


def send_platform(stack: Stack, platform: str, path: Path, topic: str | None) -> tuple[int, str]:
    from .signing import platform_headers

    envelope = eventbridge_envelope(path) if platform == "shopify" else None
    if envelope is not None:
        return send_eventbridge(stack, envelope, topic)
    body, file_headers = read_platform_file(path)
    topic_header = {"shopify": "x-shopify-topic", "woocommerce": "x-wc-webhook-topic"}[platform]
    shop, secret = platform_shop(stack, platform)
    headers = platform_headers(platform, secret, body, topic=topic or file_headers.get(topic_header), shop=shop)
    if "x-shopify-api-version" in file_headers:  # the version the file's shape was taken from, as Shopify says it
        headers["X-Shopify-API-Version"] = file_headers["x-shopify-api-version"]
    response = requests.post(f"{stack.api}/webhooks/{platform}", data=body, headers=headers, timeout=60)
    return response.status_code, response.text


def eventbridge_envelope(path: Path) -> dict[str, Any] | None:
    """A Shopify delivery through an EventBridge partner event source (`detail.payload`, `detail.metadata`)."""
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        return None
    detail = data.get("detail") if isinstance(data, dict) else None
    if (
        isinstance(detail, dict)
        and isinstance(detail.get("payload"), dict)
        and isinstance(detail.get("metadata"), dict)
    ):
        return data
    return None


def send_eventbridge(stack: Stack, envelope: dict[str, Any], topic: str | None) -> tuple[int, str]:
    """The event as EventBridge hands it to the webhook intake (no signature: AWS delivered it), from the stack's
    shop; its answer as the function gives it."""
    shop, _ = platform_shop(stack, "shopify")
    metadata = {**envelope["detail"]["metadata"], "X-Shopify-Shop-Domain": shop}
    if topic:
        metadata["X-Shopify-Topic"] = topic
    event = {**envelope, "detail": {**envelope["detail"], "metadata": metadata}}
    try:
        return 200, json.dumps(invoke(stack, "IntakeWebhooksFunction", event))
    except FunctionError as error:
        return 502, json.dumps({"errorType": error.error_type, "errorMessage": error.message})


# --- dead letters -------------------------------------------------------------------------------------------
@dataclass
class QueuePair:
    source: str  # the queue's name
    dead_letter: str


def queue_pairs(spec: StackSpec, which: str | None = None) -> list[QueuePair]:
    """Each function's queue and its dead-letter queue; `which` picks one by operation, function or queue name."""
    pairs = []
    for function in spec.functions.values():
        if not function.queue or not spec.queues[function.queue].dead_letter:
            continue
        source = spec.queue_of(function)
        dead_letter = spec.dead_letter_of(source)
        short = {name for name, function_name in SHORT_NAMES.items() if function_name == function.name}
        names = {
            function.name,
            function.logical_id,
            source.logical_id,
            source.name,
            dead_letter.logical_id,
            dead_letter.name,
            *short,
        }
        if which is None or which in names:
            pairs.append(QueuePair(source.name, dead_letter.name))
    if not pairs:
        raise SystemExit(
            f"local.send: no queue {which!r}: give a function's short name ({', '.join(SHORT_NAMES)}), "
            "its name or a queue's name"
        )
    return pairs


def _receive(sqs: Any, url: str, hold_seconds: int) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=hold_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def _receive_all(sqs: Any, url: str, hold_seconds: int) -> list[dict[str, Any]]:
    """Every message SQS will hand out now, each held invisible for `hold_seconds`."""
    found: dict[str, dict[str, Any]] = {}
    while True:
        batch = _receive(sqs, url, hold_seconds)
        fresh = [m for m in batch if m["MessageId"] not in found]
        if not fresh:
            return list(found.values())
        found.update((m["MessageId"], m) for m in fresh)


def _attribute(message: dict[str, Any], name: str) -> str:
    return (message.get("MessageAttributes") or {}).get(name, {}).get("StringValue") or "-"


def list_dead_letters(stack: Stack, which: str | None = None, bodies: bool = False) -> list[str]:
    """One line per dead-lettered message: id, group, errorType, errorMessage (the body only if asked)."""
    sqs, lines = stack.client("sqs"), []
    for pair in queue_pairs(read_stack(), which):
        url = sqs.get_queue_url(QueueName=pair.dead_letter)["QueueUrl"]
        waiting = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        messages = _receive_all(sqs, url, hold_seconds=30)
        for message in messages:  # back as they were: listing is not consuming
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        lines.append(f"{pair.dead_letter}: {waiting} message(s) (source: {pair.source})")
        if len(messages) < waiting:  # SQS hands out a FIFO group's messages only up to the first in flight
            lines.append(f"  showing {len(messages)}: the rest wait behind them in their groups")
        for message in messages:
            group = message.get("Attributes", {}).get("MessageGroupId", "-")
            sent_as = (message.get("MessageAttributes") or {}).get("sourceMessageId", {}).get("StringValue")
            lines.append(
                f"  {sent_as or message['MessageId']}  group={group}  {_attribute(message, 'errorType')}: "
                f"{_attribute(message, 'errorMessage')}"
            )
            if bodies:
                lines.append(f"    body: {message['Body']}")
    return lines


def redrive(stack: Stack, which: str | None = None) -> list[str]:
    """Move dead-lettered messages back to their source queue, group and order kept (AWS: start-message-move-task).

    Only what was dead-lettered before the redrive began moves: a message that fails again while it runs
    comes back to the dead-letter queue and stays there, instead of going round for ever.
    """
    sqs, lines = stack.client("sqs"), []
    started_ms = int(time.time() * 1000)
    for pair in queue_pairs(read_stack(), which):
        dead_url = sqs.get_queue_url(QueueName=pair.dead_letter)["QueueUrl"]
        source_url = sqs.get_queue_url(QueueName=pair.source)["QueueUrl"]
        moved = 0
        while True:
            batch = _receive(sqs, dead_url, hold_seconds=60)
            older = [m for m in batch if int(m["Attributes"]["SentTimestamp"]) < started_ms]
            for message in (m for m in batch if m not in older):  # dead-lettered again since: left there
                sqs.change_message_visibility(
                    QueueUrl=dead_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            if not older:
                break
            for message in older:  # in the order SQS gave them: a group's order is kept
                attributes = {
                    k: v for k, v in (message.get("MessageAttributes") or {}).items() if k not in REDRIVE_ATTRIBUTES
                }
                fifo = {
                    "MessageGroupId": message["Attributes"].get("MessageGroupId") or message["MessageId"],
                    "MessageDeduplicationId": message["MessageId"],
                }  # a redrive repeated after a crash: once
                sqs.send_message(
                    QueueUrl=source_url,
                    MessageBody=message["Body"],
                    MessageAttributes=attributes,
                    **(fifo if pair.source.endswith(".fifo") else {}),
                )
                sqs.delete_message(QueueUrl=dead_url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
        lines.append(f"{pair.dead_letter} -> {pair.source}: {moved} message(s) moved back")
    return lines


# --- direct invocations and the workflow ---------------------------------------------------------------


class FunctionError(Exception):
    """An error a function raised, as Lambda reports it: errorType and errorMessage."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type, self.message = error_type, message


def read_input(given: str) -> Any:
    """A file's JSON, or the argument itself as JSON text."""
    path = Path(given)
    text = path.read_text() if path.is_file() else given
    try:
        return json.loads(text)
    except ValueError:
        raise StackNotFound(f"{given!r} is neither a file nor JSON text") from None


def invoke(stack: Stack, function: str, event: Any) -> Any:
    """Lambda's Invoke of the stack's function (its name or logical id): its result, or FunctionError."""
    response = requests.post(
        f"{stack.api}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event),
        headers={"Content-Type": "application/json"},
        timeout=900,
    )
    if response.status_code != 200:
        kind = response.headers.get("X-Amzn-ErrorType", f"HTTP {response.status_code}")
        raise StackNotFound(
            f"the stack refused the invocation of {function}: {kind}: {response.text} "
            "(a stack started before `local.send invoke` existed has no Invoke endpoint)"
        )
    payload = response.json()
    if response.headers.get("X-Amz-Function-Error"):
        raise FunctionError(payload.get("errorType", "Unknown"), payload.get("errorMessage", ""))
    return payload


def _remote_task(stack: Stack, logical_id: str) -> Any:
    def task(event: Any, context: Any) -> Any:
        try:
            return invoke(stack, logical_id, event)
        except FunctionError as exc:  # raised under its own name: Step Functions matches Retry and Catch on it
            raise type(exc.error_type, (Exception,), {})(exc.message) from None

    return task


def state_lines(history: list[dict[str, Any]]) -> list[str]:
    """One line per state left (its name and what it passed on), per task failure and per execution failure."""
    lines = []
    for event in history:
        kind = event["type"]
        if kind.endswith("StateExited"):
            details: dict[str, Any] = event.get("stateExitedEventDetails", {})
            lines.append(f"{details.get('name')}: {details.get('output', '')}")
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            lines.append(f"  {kind}: {details.get('error', '')}: {details.get('cause', '')}")
    return lines


def run_workflow(stack: Stack, execution_input: Any, wait_seconds: float = 1800) -> tuple[dict[str, Any], list[str]]:
    """The contact workflow run here by moto's interpreter on `execution_input`, its tasks the stack's functions."""
    import re

    from moto import mock_aws
    from moto.core.config import default_user_config

    from .workflow import DEFINITION, LocalWorkflow

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):  # the interpreter's moto is in this process, never an endpoint
        os.environ.pop(name, None)
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": stack.region}
    )
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)  # its failures: in state_lines
    functions = sorted(set(re.findall(r"\$\{(\w+Function)Arn\}", DEFINITION.read_text())))
    with mock_aws():
        workflow = LocalWorkflow(
            {logical_id: _remote_task(stack, logical_id) for logical_id in functions}, stack.region
        )
        execution = workflow.run(execution_input, wait_seconds=wait_seconds)
        return execution, state_lines(workflow.history(execution["executionArn"]))


# --- the command line ---------------------------------------------------------------------------------------
def _out(text: str) -> None:
    """Print to a reader that may have gone (`| head`, `| true`): what was sent is sent, its status stands."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        os.close(devnull)


def _print_answer(status: int, text: str) -> int:
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    _out(f"{status}\n{text}")
    return 0 if 200 <= status < 300 else 1


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.send", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for operation in OPERATIONS:
        sub = commands.add_parser(operation, help=f"send {'an' if operation == 'update' else 'a'} {operation} command")
        sub.add_argument("command", help="the command as JSON text")
        sub.add_argument("--queue", action="store_true", help="enqueue instead of calling the API")
    for platform in PLATFORMS:
        sub = commands.add_parser(platform, help=f"post a signed {platform} customer webhook")
        sub.add_argument("file", type=Path, help="the customer JSON, or an API event holding it")
        sub.add_argument("--topic", help="the webhook topic (default: the file's, else the update topic)")
    sub = commands.add_parser("invoke", help="invoke an operation's function directly (the event is the command)")
    sub.add_argument("operation", choices=tuple(INVOKED), help="the function's operation")
    sub.add_argument("event", metavar="FILE|JSON", help="the event: a file (events/*/direct.json) or JSON text")
    sub = commands.add_parser("workflow", help="run an input through the contact workflow against the stack")
    sub.add_argument("input", metavar="FILE|JSON", help="the input: a file (events/contact_workflow/) or JSON text")
    sub = commands.add_parser("dead-letters", help="list dead-lettered messages with their reasons")
    sub.add_argument("queue", nargs="?", help="one operation, function or queue (default: all)")
    sub.add_argument("--bodies", action="store_true", help="print the bodies too (they hold personal data)")
    sub = commands.add_parser("redrive", help="move dead-lettered messages back to their source queue")
    sub.add_argument("queue", nargs="?", help="one operation, function or queue (default: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stack = None
    try:
        stack = find_stack()
        print(reached(stack), file=sys.stderr, flush=True)
        if args.action in OPERATIONS and args.queue:
            first, answer = send_queue(stack, args.action, args.command)
            _out(f"{first}\n{json.dumps(answer, indent=2)}")
            return 0
        if args.action in OPERATIONS:
            return _print_answer(*send_api(stack, args.action, args.command))
        if args.action == "invoke":
            event = read_input(args.event)
            try:
                result = invoke(stack, INVOKED[args.operation], event)
            except FunctionError as exc:
                _out(f"{exc.error_type}: {exc.message}")
                return 1
            _out(json.dumps(result, indent=2, ensure_ascii=False))
            return 0
        if args.action == "workflow":
            execution, lines = run_workflow(stack, read_input(args.input))
            _out("\n".join([*lines, execution["status"]]))
            if "output" in execution:
                _out(json.dumps(execution["output"], indent=2, ensure_ascii=False))
            return 0 if execution["status"] == "SUCCEEDED" else 1
        if args.action in PLATFORMS:
            if not args.file.is_file():
                print(f"local.send: no file {args.file}", file=sys.stderr)
                return 2
            return _print_answer(*send_platform(stack, args.action, args.file, args.topic))
        lines = (
            list_dead_letters(stack, args.queue, args.bodies)
            if args.action == "dead-letters"
            else redrive(stack, args.queue)
        )
        _out("\n".join(lines))
        return 0
    except StackNotFound as exc:
        print(f"local.send: {exc}", file=sys.stderr)
        return 2
    except (requests.ConnectionError, EndpointConnectionError) as exc:
        where = f"{stack.api} and {stack.moto} (from {stack.source})" if stack else "the stack"
        print(f"local.send: nothing answers at {where}: is `make run` running? ({type(exc).__name__})", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"local.send: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
