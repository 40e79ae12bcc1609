"""`make run`: the whole stack on one machine, no AWS account and no Docker.

Starts on 127.0.0.1: the Engage sandbox (demo contacts seeded), moto's server
with the secrets, the FIFO queues and their dead-letter queues and the
idempotency table, an API Gateway stand-in that turns each request into the
REST proxy event and calls the handler in-process (and answers Lambda's Invoke
API, POST /2015-03-31/functions/NAME/invocations, for `local.send invoke` and
`local.send workflow`: API Gateway has no such route), and pollers per queue that
feed its function as Lambda's SQS event source mapping does: as many as the
template's QueueMaxConcurrency, each with a container of its own. Everything is
read from template.yaml. moto's server runs in a process of its own, and under
`make run` the sandbox too (each can take a core, as separate services would),
started and stopped with the stack. Ctrl-C (or SIGINT, SIGTERM, SIGHUP) stops
it all.

Ports: API_PORT (3000), SANDBOX_PORT (8080), MOTO_PORT (5000).
ENGAGE_BASE_URL and ENGAGE_API_KEY point the stack at a real Engage tenant instead of the sandbox.
Each function gets the template's environment and nothing else from the shell: set a
template parameter by its name to change it (EngageCustomAttributes=favoriteStore, EngageApiVersion=v3,
...); the shops are LOCAL_SHOPS_DOCUMENT's. A function's variable set in the shell (ENGAGE_API_VERSION) is
not passed on, and the stack says which parameter sets it.
While it runs, its addresses are in .local-stack.json in the checkout (LOCAL_STACK_FILE moves it), where
`python -m local.send` finds them; the file is removed when the stack stops. Everything the stack
holds (contacts, queues, table) is in memory and gone when it stops.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import trace
from .engage_sandbox import EngageSandbox
from .lambda_runtime import LocalContext, SqsEventSource, api_event, as_service, container_metrics
from .signing import new_secret
from .template import LAYER, ROOT, FunctionSpec, StackSpec, read_stack, resolve

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))  # where Lambda puts the layer (/opt/python)

HOST = "127.0.0.1"
REGION = "eu-north-1"
SANDBOX_KEY = "sandbox-api-key"
ENGAGE_KEY_SECRET = "local/engage-api-key"
WEBHOOK_SECRET = "local/webhook-secret"
DIGEST_KEY_SECRET = "local/digest-key"  # the template's DigestKeySecret: a key of this run
TABLE = "local-idempotency"
# The shops document the stack makes (template parameter ShopsSecretArn), unless LOCAL_SHOPS_DOCUMENT gives
# one: each platform's shop as local.signing names it, with a signing secret of this run.
SHOPS_PARAMETER, SHOPS_SECRET = "ShopsSecretArn", "local/shops"
LOCAL_SHOPS = {"shopify": "example.myshopify.com", "woocommerce": "http://127.0.0.1/"}
INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")  # Lambda's Invoke API, on the API stand-in
DEFAULT_PORTS = {"API_PORT": 3000, "SANDBOX_PORT": 8080, "MOTO_PORT": 5000}
# the stack's own choices where the template's default would not run locally (a parameter by name wins)
LOCAL_PARAMETERS = {"EngageCustomAttributes": "favoriteStore,shoeSize"}
# read by the stack itself, never handed to a function as they are
STACK_VARIABLES = ("ENGAGE_BASE_URL",)
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
CHILD_IGNORES = {signal.SIGINT, signal.SIGHUP}  # the terminal's; the stack stops its children itself


def _platforms_of(document: str) -> list[str]:
    try:
        data = json.loads(document)
    except ValueError:
        return []  # the update function says what is wrong with it, at start
    return [p for p in data if p in LOCAL_SHOPS] if isinstance(data, dict) else []


def stack_file() -> Path:
    """Where a running stack leaves its addresses for `local.send` (git-ignored)."""
    return Path(os.environ.get("LOCAL_STACK_FILE") or ROOT / ".local-stack.json")


class PortTaken(RuntimeError):
    pass


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def other_stack(path: Path) -> int | None:
    """The pid of another running stack whose addresses `path` holds (it answers `local.send`), if any."""
    try:
        data = json.loads(path.read_text())
        pid = int(data.get("pid", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return pid if pid and pid != os.getpid() and process_alive(pid) else None


def port_from_env(name: str) -> int:
    raw = os.environ.get(name, str(DEFAULT_PORTS[name]))
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a port number, not {raw!r}") from None


def check_distinct(ports: dict[str, int]) -> None:
    """Two services on one port: the second could never start; say so before either does."""
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port and port in seen:
            raise PortTaken(f"{seen[port]} and {name} are both {port}: give each service its own port")
        seen[port] = name


def parameter_overrides(spec: StackSpec, environ: dict[str, str]) -> dict[str, str]:
    """The template's parameters set by name in the environment (`EngageApiVersion=v3 make run`)."""
    return {name: environ[name] for name in spec.parameters if name in environ}


def function_variables(spec: StackSpec) -> dict[str, Any]:
    """Every variable the template gives some function, with the template's value for it (a !Ref names its
    parameter)."""
    found: dict[str, Any] = {}
    for function in spec.functions.values():
        for key, value in function.environment.items():
            found.setdefault(key, value)
    return found


def retired_variables() -> list[str]:
    """The platform variables the shops document replaced (a shell may still hold them from an older setup)."""
    from engage_contact.ecommerce.config import RETIRED_SETTINGS

    return sorted(RETIRED_SETTINGS)


def ignored_variables(spec: StackSpec, environ: dict[str, str]) -> list[str]:
    """One line per function variable set in the shell: not passed on, and what to set instead."""
    notes = [
        f"{name} in the environment is not passed to the functions: it no longer configures the platforms; "
        f"the shops document does (LOCAL_SHOPS_DOCUMENT, docs/platforms.md)"
        for name in retired_variables()
        if name in environ
    ]
    for name, value in sorted(function_variables(spec).items()):
        if name not in environ or name in STACK_VARIABLES:
            continue
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in spec.parameters:
            notes.append(
                f"{name} in the environment is not passed to the functions: set the template "
                f"parameter {value['Ref']} instead ({value['Ref']}=... make run)"
            )
        else:
            notes.append(f"{name} in the environment is not passed to the functions: the template sets it")
    return notes


def check_free(port: int, name: str) -> None:
    if port == 0:
        return
    with socket.socket() as probe:
        # as the servers themselves bind: a listener refuses, connections closing (TIME_WAIT) do not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise PortTaken(f"port {port} on {HOST} ({name}) is already in use; set {name} to another port") from None


class ChildServer:
    """A server of the stack in a process of its own (moto, the sandbox), as they are separate machines when
    deployed: the stack's functions and pollers keep a core, the server gets the other. It is started and
    stopped by the stack; it ignores the terminal's Ctrl-C (the stack stops it in order) and stops by itself
    if the stack dies (its end of the pipe closes)."""

    def __init__(self, name: str, target: Any, *args: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
        self.name = name
        self.pipe, child_end = context.Pipe()
        self.process = context.Process(target=_serve_child, args=(target, child_end, *args), name=name, daemon=True)
        # The child starts with these ignored (an ignored signal stays ignored across exec, and Python then
        # installs no KeyboardInterrupt of its own): a Ctrl-C while it starts is the stack's to handle.
        main = threading.current_thread() is threading.main_thread()
        held = {number: signal.signal(number, signal.SIG_IGN) for number in CHILD_IGNORES} if main else {}
        try:
            self.process.start()
        finally:
            for number, handler in held.items():
                signal.signal(number, handler)
        child_end.close()
        if not self.pipe.poll(120):
            self.stop()
            raise RuntimeError(f"{name} did not start")
        try:
            outcome, value = self.pipe.recv()
        except EOFError:
            outcome, value = "error", f"the process ended ({self.process.exitcode})"
        if outcome != "ready":
            self.stop()
            raise OSError(f"{name}: {value}")
        self.port: int = value

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stop(self) -> None:
        try:
            self.pipe.send("stop")
        except (OSError, ValueError):
            pass  # already gone
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self.pipe.close()


def _serve_child(target: Any, pipe: Any, *args: Any) -> None:
    """In the child: start the server, tell the stack its port, serve until told to stop or the stack is gone."""
    for number in CHILD_IGNORES:
        signal.signal(number, signal.SIG_IGN)
    try:
        port, stop = target(*args)
    except Exception as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    pipe.send(("ready", port))
    try:
        pipe.recv()
    except (EOFError, OSError):
        pass
    stop()


def serve_moto(port: int) -> tuple[int, Any]:
    """moto's server (ThreadedMotoServer) with this project's corrections (local.moto_fixes)."""
    import logging

    from moto.server import ThreadedMotoServer

    from local import moto_fixes

    moto_fixes.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per AWS call drowns the banner
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    return server.get_host_and_port()[1], server.stop


def serve_sandbox(port: int, api_keys: tuple[str, ...]) -> tuple[int, Any]:
    sandbox = EngageSandbox(port=port, api_keys=api_keys).start()
    return sandbox.port, sandbox.stop


class LocalFunction:
    """One function loaded as Lambda loads it: its own environment at import, one invocation at a time."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str]) -> None:
        self.spec = spec
        self.service = env.get("POWERTOOLS_SERVICE_NAME")  # its log lines' and metrics' service, as deployed
        self.lock = threading.Lock()  # a container handles one event at a time
        saved = dict(os.environ)
        os.environ.update(env)  # on top of the stack's own, which holds no function's variable (LocalStack.start)
        try:
            module_name, handler_name = spec.handler.rsplit(".", 1)
            path = spec.code_uri / f"{module_name}.py"
            module_spec = importlib.util.spec_from_file_location(f"local_{spec.name}_{module_name}", path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"{path} is no Python module")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            self.handler = getattr(module, handler_name)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.metrics = container_metrics(self.service) if self.service else None  # its own, as its process's

    def __call__(self, event: Any, context: Any) -> Any:
        with self.lock, as_service(self.service, self.metrics):
            return self.handler(event, context)


class LocalStack:
    def __init__(
        self,
        api_port: int,
        sandbox_port: int,
        moto_port: int,
        spec: StackSpec | None = None,
        parameters: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
        sandbox_process: bool = False,
    ) -> None:
        self.spec = spec or read_stack()
        self.parameter_overrides = parameters or {}  # template parameters, as `sam deploy` would take them
        self.environment_overrides = environment or {}  # function environment on top of the template's
        self.ports = {"API_PORT": api_port, "SANDBOX_PORT": sandbox_port, "MOTO_PORT": moto_port}
        self.engage_url = os.environ.get("ENGAGE_BASE_URL")
        self.stopping = threading.Event()
        self.halted = False  # set by a signal handler, which may take no lock (main: stopped)
        self.threads: list[threading.Thread] = []
        self.sandbox: EngageSandbox | None = None  # in this process, where a caller can reach its state
        self.sandbox_process = sandbox_process  # `make run`: the sandbox in a process of its own instead
        self.children: dict[str, ChildServer] = {}  # moto's server and (sandbox_process) the sandbox
        self.moto: ChildServer | None = None
        self.api: ThreadingHTTPServer | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.environments: dict[str, dict[str, str]] = {}
        self.queue_urls: dict[str, str] = {}
        self.platform_secrets: dict[str, str] = {}  # platform -> its shops document's name in moto, when made here
        self.refs: dict[str, str] = {}  # the template's parameters and resources, resolved

    def queue_url_of(self, function: FunctionSpec) -> str:
        """The URL of the queue a function polls."""
        return self.queue_urls[self.spec.queue_of(function).logical_id]

    def own_sandbox(self) -> EngageSandbox:
        """The sandbox running in this process (its state at hand); an error for a stack whose Engage is elsewhere."""
        if self.sandbox is None:
            raise RuntimeError("this stack's Engage sandbox is not in this process (ENGAGE_BASE_URL, or make run)")
        return self.sandbox

    # --- start ---------------------------------------------------------------------------------
    def start(self, pollers: bool = True) -> None:
        used = {n: p for n, p in self.ports.items() if n != "SANDBOX_PORT" or not self.engage_url}
        check_distinct(used)
        for name, port in used.items():
            check_free(port, name)
        self._start_environment = dict(os.environ)
        for name in [*function_variables(self.spec), *retired_variables()]:  # a function sees the template's value
            os.environ.pop(name, None)  # or none, never the shell's
        if not self.engage_url and self.sandbox_process:
            child = self.children["engage"] = ChildServer(
                "engage-sandbox", serve_sandbox, self.ports["SANDBOX_PORT"], (SANDBOX_KEY,)
            )
            self.ports["SANDBOX_PORT"] = child.port
            self.engage_url = f"http://{HOST}:{child.port}"
        elif not self.engage_url:
            self.sandbox = EngageSandbox(port=self.ports["SANDBOX_PORT"], api_keys=(SANDBOX_KEY,)).start()
            self.engage_url = self.sandbox.url
        self._start_moto()
        trace.start()  # LOCAL_TRACE_FILE: the benches' timeline (local/trace.py)
        refs = self.refs = self._create_resources()
        for spec in self.spec.functions.values():
            env = {
                key: resolve(value, refs, self.spec.mappings, self.spec.conditions)
                for key, value in spec.environment.items()
            }
            self.environments[spec.logical_id] = {**env, **self.environment_overrides}
            self.functions[spec.logical_id] = LocalFunction(spec, self.environments[spec.logical_id])
        self._start_api()
        for spec in self.spec.functions.values():
            if spec.queue and pollers:
                self._start_pollers(spec)

    def _start_moto(self) -> None:
        self.moto = self.children["moto"] = ChildServer("moto", serve_moto, self.ports["MOTO_PORT"])
        self.ports["MOTO_PORT"] = self.moto.port
        # Every AWS client of this process (the functions' too) talks to moto, with credentials that reach nothing.
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
            }
        )
        os.environ.pop("AWS_PROFILE", None)

    @property
    def moto_url(self) -> str:
        return f"http://{HOST}:{self.ports['MOTO_PORT']}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports['API_PORT']}"

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.moto_url, region_name=REGION)

    def _create_resources(self) -> dict[str, str]:
        secrets, sqs, dynamodb = self.client("secretsmanager"), self.client("sqs"), self.client("dynamodb")
        api_key = os.environ.get("ENGAGE_API_KEY") or SANDBOX_KEY
        refs = {
            "EngageBaseUrl": self.engage_url,
            "EngageApiKeySecretArn": secrets.create_secret(Name=ENGAGE_KEY_SECRET, SecretString=api_key)["ARN"],
            **LOCAL_PARAMETERS,
        }
        refs.update(self.parameter_overrides)
        for name, parameter in self.spec.parameters.items():
            refs.setdefault(name, str(parameter.get("Default", "")))
        refs["WebhookSecret"] = secrets.create_secret(Name=WEBHOOK_SECRET, SecretString=new_secret())["ARN"]
        digest_key = uuid.uuid4().hex + uuid.uuid4().hex
        refs["DigestKeySecret"] = secrets.create_secret(Name=DIGEST_KEY_SECRET, SecretString=digest_key)["ARN"]
        if SHOPS_PARAMETER in self.spec.parameters and not refs.get(SHOPS_PARAMETER):  # the same document as deployed
            document = os.environ.get("LOCAL_SHOPS_DOCUMENT") or json.dumps(
                {p: {shop: {"secret": f"local-{uuid.uuid4().hex}"}} for p, shop in LOCAL_SHOPS.items()}
            )
            refs[SHOPS_PARAMETER] = secrets.create_secret(Name=SHOPS_SECRET, SecretString=document)["ARN"]
            self.platform_secrets.update(dict.fromkeys(_platforms_of(document), SHOPS_SECRET))
        for logical_id, resource in self.spec.resources.items():
            if resource["Type"] == "AWS::DynamoDB::Table":
                props = resource["Properties"]
                name = TABLE if logical_id == "IdempotencyTable" else f"{TABLE}-{logical_id}"  # one a table
                dynamodb.create_table(
                    TableName=name,
                    BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=props["AttributeDefinitions"],
                    KeySchema=props["KeySchema"],
                )
                refs[logical_id] = name
        # dead-letter queues first: the others name them in their redrive policy
        for queue in sorted(self.spec.queues.values(), key=lambda q: q.dead_letter is not None):
            attributes = {"VisibilityTimeout": str(queue.visibility_timeout)}
            if queue.fifo:
                attributes["FifoQueue"] = "true"
                attributes["ContentBasedDeduplication"] = str(queue.content_based_deduplication).lower()
            if queue.dead_letter:
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": refs[f"{queue.dead_letter}.Arn"],
                        "maxReceiveCount": resolve(queue.max_receive_count, refs, self.spec.mappings),
                    }
                )
            url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            refs[queue.logical_id], refs[f"{queue.logical_id}.Arn"] = url, arn
            self.queue_urls[queue.logical_id] = url
        return refs

    def _start_api(self) -> None:
        stack = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                invoked = INVOKE_PATH.fullmatch(path) if self.command == "POST" else None
                if invoked:  # Lambda's Invoke API, as Step Functions or the SDK calls it: the event is the body
                    return self._answer(*stack.invoke_direct(invoked.group(1), body))
                function = stack.function_for(self.command, path)
                if function is None:  # what API Gateway answers for a route it does not have
                    return self._answer(
                        403,
                        {"Content-Type": "application/json"},
                        json.dumps({"message": "Missing Authentication Token"}),
                    )
                event = api_event(self.command, path, body.decode("utf-8", "replace"), dict(self.headers.items()))
                outcome = stack.invoke_for_api(function, event)
                if outcome is None:  # API Gateway's answer at its integration timeout; the function goes on
                    return self._answer(
                        504, {"Content-Type": "application/json"}, json.dumps({"message": "Endpoint request timed out"})
                    )
                if isinstance(outcome, Exception):  # as API Gateway does when the function itself fails
                    return self._answer(
                        502, {"Content-Type": "application/json"}, json.dumps({"message": "Internal server error"})
                    )
                self._answer(outcome["statusCode"], outcome.get("headers") or {}, outcome.get("body") or "")

            def _answer(self, status: int, headers: dict[str, str], body: str) -> None:
                payload = body.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle

        self.api = ThreadingHTTPServer((HOST, self.ports["API_PORT"]), Handler)
        self.api.daemon_threads = True
        self.ports["API_PORT"] = self.api.server_address[1]
        self._thread(self.api.serve_forever, "api")

    @staticmethod
    def invoke_for_api(function: LocalFunction, event: dict[str, Any]) -> Any:
        """The function's answer, or the exception it raised; None when it has not answered within the route's
        integration timeout (API Gateway then answers 504 itself while the invocation runs on)."""
        outcome: list[Any] = []
        started = time.monotonic()

        def invoke() -> None:
            try:
                outcome.append(function(event, LocalContext(function.spec.name, function.spec.timeout)))
            except Exception as exc:
                outcome.append(exc)

        worker = threading.Thread(target=invoke, name=f"invoke-{function.spec.name}", daemon=True)
        worker.start()
        worker.join(max(function.spec.integration_timeout - (time.monotonic() - started), 0))
        return outcome[0] if outcome else None

    def invoke_direct(self, name: str, body: bytes) -> tuple[int, dict[str, str], str]:
        """Lambda's Invoke (RequestResponse) of a function by name or logical id: the status, headers and payload.

        The function's answer is the payload; an error it raises is `{"errorType", "errorMessage"}` with the
        X-Amz-Function-Error header, as Lambda answers. Only on this stand-in: API Gateway has no such route.
        """
        json_type = {"Content-Type": "application/json"}
        function = next((f for s, f in self.functions.items() if name in (s, self.spec.functions[s].name)), None)
        if function is None:
            return (
                404,
                {**json_type, "X-Amzn-ErrorType": "ResourceNotFoundException"},
                json.dumps({"Type": "User", "message": f"Function not found: {name}"}),
            )
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            return (
                400,
                {**json_type, "X-Amzn-ErrorType": "InvalidRequestContentException"},
                json.dumps({"Type": "User", "message": "Could not parse request body into json"}),
            )
        try:
            result = function(event, LocalContext(function.spec.name, function.spec.timeout))
        except Exception as exc:  # what Lambda answers for a function that raised
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return 200, {**json_type, "X-Amz-Function-Error": "Unhandled"}, json.dumps(error)
        return 200, json_type, json.dumps(result)

    def function_for(self, method: str, path: str) -> LocalFunction | None:
        spec = self.spec.function_for_route(method, path)
        return self.functions[spec.logical_id] if spec else None

    def container(self, spec: FunctionSpec) -> LocalFunction:
        """Another container of a function (Lambda runs several at once): its own handler, clients and budget."""
        return LocalFunction(spec, self.environments[spec.logical_id])

    def event_source(self, spec: FunctionSpec, container: LocalFunction | None = None) -> SqsEventSource:
        """The queue of a function wired to it (or to one more of its containers) as Lambda's event source would be."""
        handler = container or self.functions[spec.logical_id]
        return SqsEventSource(
            self.client("sqs"),
            self.queue_urls[self.spec.queue_of(spec).logical_id],
            handler,
            batch_size=spec.batch_size,
            timeout_seconds=spec.timeout,
            batching_window=spec.batching_window,
            function_name=spec.name,
        )

    def queue_concurrency(self) -> int:
        """Pollers per queue: the template's QueueMaxConcurrency (the event source's MaximumConcurrency)."""
        return max(int(self.refs.get("QueueMaxConcurrency") or 1), 1)

    def _start_pollers(self, spec: FunctionSpec) -> None:
        """Several batches of one queue at once, as Lambda's event source mapping runs them: the first poller
        feeds the function's own container, each other one a container of its own (its clients, its budget lease).
        FIFO order holds: SQS hands out no message of a group while another of that group is in flight."""
        for number in range(self.queue_concurrency()):
            source = self.event_source(spec, self.container(spec) if number else None)
            self._start_poller(spec, source, f"poller-{spec.name}-{number + 1}")

    def _start_poller(self, spec: FunctionSpec, source: SqsEventSource, name: str) -> None:

        def poll() -> None:
            while not (self.stopping.is_set() or self.halted):
                try:
                    if source.poll_once(wait_seconds=1) is None:
                        self.stopping.wait(0.2)
                except Exception as exc:  # keep polling; say what happened (not while the stack goes down)
                    if self.stopping.is_set() or self.halted:
                        break
                    print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                    self.stopping.wait(1)

        self._thread(poll, name)

    def _thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    # --- stop ------------------------------------------------------------------------------------
    def stop(self) -> None:
        self.stopping.set()
        if self.api:
            self.api.shutdown()
            self.api.server_close()
        for thread in self.threads:
            thread.join(timeout=5)
        if self.moto:
            self.moto.stop()
        if hasattr(self, "_start_environment"):
            os.environ.clear()
            os.environ.update(self._start_environment)
        if self.sandbox:
            self.sandbox.stop()
        for child in self.children.values():
            if child is not self.moto:
                child.stop()

    def addresses(self) -> dict[str, Any]:
        """What another shell needs to reach this stack: its URLs, region, secrets' names and queues."""
        queues = {}
        for spec in self.spec.functions.values():
            if spec.queue:
                dead_letter = self.spec.queues[spec.queue].dead_letter
                dead_letter_url = self.queue_urls.get(dead_letter) if dead_letter else None
                queues[spec.queue] = {
                    "url": self.queue_urls[spec.queue],
                    "function": spec.name,
                    "deadLetterQueue": dead_letter_url,
                }
        return {
            "pid": os.getpid(),
            "api": self.api_url,
            "moto": self.moto_url,
            "engage": self.engage_url,
            "region": REGION,
            "webhookSecret": WEBHOOK_SECRET,
            "digestKeySecret": DIGEST_KEY_SECRET,
            "platformSecrets": self.platform_secrets,
            "queues": queues,
            "processes": {name: child.pid for name, child in self.children.items()},
        }

    def publish(self, path: Path) -> None:
        """Leave the addresses where `local.send` looks (written whole, then renamed: never half a file)."""
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.addresses(), indent=2) + "\n")
        partial.replace(path)

    @staticmethod
    def unpublish(path: Path) -> None:
        """Remove the addresses file if it is still this process's (a later stack may have replaced it)."""
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass

    def banner(self, published: bool = True) -> str:
        """What runs where, and commands to try that reach THIS stack (a second stack's are given its ports)."""
        routes = "\n".join(
            f"    {m} {self.api_url}{p}  -> {f.name}" for f in self.spec.functions.values() for m, p in f.routes
        )

        def queue_name(logical_id: str) -> str:
            return self.queue_urls[logical_id].rsplit("/", 1)[-1]

        queues = "\n".join(
            f"    {queue_name(f.queue)} -> {f.name}"
            f" (dead letters: {queue_name(self.spec.dead_letter_of(self.spec.queues[f.queue]).logical_id)})"
            for f in self.spec.functions.values()
            if f.queue
        )
        ours = self.sandbox is not None or "engage" in self.children
        ports = "" if published else f"API_PORT={self.ports['API_PORT']} MOTO_PORT={self.ports['MOTO_PORT']} "
        send = f"{ports}.venv/bin/python -m local.send"
        platforms = "".join(f"  {send} {p} events/update_contact/{p}.json\n" for p in self.platform_secrets)
        engage = (
            f"the Engage sandbox at {self.engage_url} (admin: {self.engage_url}/_sandbox/contacts)"
            if ours
            else f"Engage at {self.engage_url}"
        )
        look = f"  curl -s {self.engage_url}/_sandbox/contacts\n" if ours else ""
        found = f"local.send finds this stack's addresses in {stack_file().name}: no ports to repeat"
        if not published:
            found = f"{stack_file().name} holds another stack's addresses: these lines give local.send this one's ports"
        return f"""engage-contact-functions running locally
  Engage:  {engage}
  AWS:     moto at {self.moto_url} (secrets, FIFO queues with dead-letter queues, idempotency table)
  API (requests are signed with the local webhook secret):
{routes}
  queues at {self.moto_url}/123456789012/, each polled as Lambda's event source mapping would
  ({self.queue_concurrency()} batches at once, QueueMaxConcurrency):
{queues}

Try it:
  {send} update \\
      '{{"contactId": "430d3329-7eef-45c0-37f9-ae9300a0dace", "attributes": {{"city": "Lund"}}}}'
  {send} promote '{{"lookup": {{"email": "bertil@example.com"}}}}' --queue
{platforms}  {send} invoke update events/update_contact/direct.json
  {send} workflow events/contact_workflow/create_then_promote.json
  {send} dead-letters      # then, once the cause is fixed: local.send redrive
{look}({found}.)
Everything it holds is in memory: it is gone when the stack stops. Ctrl-C stops everything.
ready"""

    def exited_child(self) -> str | None:
        """The first of the stack's own servers (moto, the sandbox) whose process has ended, said in a line."""
        for child in self.children.values():
            if not child.process.is_alive():
                return f"{child.name} (pid {child.pid}) exited with status {child.process.exitcode}"
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parse_args(argv)
    # A signal handler runs between two bytecodes of the main thread, which may be holding any lock just then
    # (an Event's own while it waits on that Event: setting it from the handler waited on itself for ever, and a
    # stack given SIGTERM under load never stopped). So the handler takes no lock: it notes the signal, and
    # the main thread, which looks every 0.1 s, stops the stack.
    stopped: list[int] = []
    stack = None

    def stop_signal(number: int, _frame: Any) -> None:
        stopped.append(number)
        if stack is not None:
            stack.halted = True  # its pollers go quiet at once: a signal to the process group stops moto too

    for name in STOP_SIGNALS:
        signal.signal(getattr(signal, name), stop_signal)
    for note in ignored_variables(read_stack(), dict(os.environ)):
        print(f"make run: {note}", file=sys.stderr, flush=True)
    try:
        stack = LocalStack(
            port_from_env("API_PORT"),
            port_from_env("SANDBOX_PORT"),
            port_from_env("MOTO_PORT"),
            parameters=parameter_overrides(read_stack(), dict(os.environ)),
            sandbox_process=True,
        )
        stack.start()
    except PortTaken as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"make run: could not start: {type(exc).__name__}: {exc}", file=sys.stderr)
        if stack is not None:
            stack.stop()
        return 1
    return _serve(stack, stopped)


def _serve(stack: LocalStack, stopped: list[int]) -> int:
    """Until a stop signal, or until one of the stack's servers dies (then say which, stop, and fail)."""
    addresses, status = stack_file(), 0
    try:
        if stopped:
            return 0
        first = other_stack(addresses)
        if first is None:
            stack.publish(addresses)
        else:  # its file stays: local.send keeps talking to the stack it found first
            print(
                f"note: {addresses.name} holds the stack of pid {first}, which local.send and local.backfill "
                f"reach; this one takes it over when that one stops. Until then give them its ports: "
                f"API_PORT={stack.ports['API_PORT']} MOTO_PORT={stack.ports['MOTO_PORT']}",
                flush=True,
            )
        print(stack.banner(published=first is None), flush=True)
        while not stopped:
            time.sleep(0.1)
            exited = stack.exited_child()
            if exited:
                print(f"make run: {exited}; stopping the stack", file=sys.stderr, flush=True)
                status = 1
                break
            if first is not None and other_stack(addresses) is None:
                first = None
                stack.publish(addresses)
                print(f"{addresses.name} now holds this stack's addresses", flush=True)
    finally:
        stack.stopping.set()  # first: a process-group signal may have stopped moto already, and pollers go quiet
        print("stopping…", flush=True)
        stack.unpublish(addresses)
        stack.stop()
        print("stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
