"""Run statemachine/contact_workflow.asl.json for real: moto's Step Functions interpreter, our functions as its tasks.

moto (with `execute_state_machine`) interprets the ASL: paths, intrinsic functions,
Retry and Catch. Its Lambda invoke would need Docker, so the invoke of each function
registered here is routed to our handler, called in process as Lambda calls it: its
return value is the payload, an error it raises becomes Lambda's `{"errorType",
"errorMessage"}` with a function error, which Step Functions names by errorType.
That is moto's plumbing replaced, not our code. Used by the tests; never deployed.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .lambda_runtime import LocalContext
from .template import ROOT

DEFINITION = ROOT / "statemachine" / "contact_workflow.asl.json"
_ROUTES: dict[str, Callable[[Any, Any], Any]] = {}  # moto function name -> our handler


def route_lambda_invokes() -> None:
    """Make moto's Lambda invoke call the handler registered for the function, instead of a Docker container."""
    from moto.awslambda.models import LambdaFunction

    if getattr(LambdaFunction, "_engage_routed", False):
        return
    docker_invoke = LambdaFunction._invoke_lambda

    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        handler = _ROUTES.get(self.function_name)
        if handler is None:
            return docker_invoke(self, event)
        try:
            result = handler(event, LocalContext(self.function_name, float(self.timeout)))
        except Exception as exc:  # what Lambda answers for a function that raised
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), True, ""
        return json.dumps(result), False, ""

    LambdaFunction._invoke_lambda = invoke  # type: ignore[method-assign]  # moto patched: invoked in this process
    LambdaFunction._engage_routed = True  # type: ignore[attr-defined]  # our mark on moto's class: patched once


class LocalWorkflow:
    """The state machine created in moto, its `${…FunctionArn}` substitutions pointing at our handlers.

    Needs moto active (`mock_aws`) with `stepfunctions.execute_state_machine` on.
    `functions` maps the template's logical ids (UpdateContactFunction, …) to handlers.
    """

    def __init__(
        self, functions: dict[str, Callable[[Any, Any], Any]], region: str, definition: Path = DEFINITION
    ) -> None:
        import boto3

        route_lambda_invokes()
        self.sfn = boto3.client("stepfunctions", region_name=region)
        role = boto3.client("iam", region_name=region).create_role(
            RoleName=f"workflow-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "")  # never run: the invoke is routed to the handler
        lambda_client = boto3.client("lambda", region_name=region)
        from .template import read_stack

        timeout = read_stack().function_named("update_contact").timeout
        text = definition.read_text()
        for logical_id, handler in functions.items():
            name = f"{logical_id}-{uuid.uuid4().hex[:8]}"
            arn = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role,
                Handler="app.h",
                Code={"ZipFile": code.getvalue()},
                Timeout=timeout,  # the template's: the functions keep a reserve for AWS calls out of it
            )["FunctionArn"]
            _ROUTES[name] = handler
            text = text.replace(f"${{{logical_id}Arn}}", arn)
        self.arn = self.sfn.create_state_machine(
            name=f"contact-workflow-{uuid.uuid4().hex[:8]}", definition=text, roleArn=role
        )["stateMachineArn"]

    def run(self, execution_input: Any, wait_seconds: float = 120) -> dict[str, Any]:
        """Start an execution and wait for its end: describe_execution's answer, output parsed."""
        arn = self.sfn.start_execution(
            stateMachineArn=self.arn, name=uuid.uuid4().hex, input=json.dumps(execution_input)
        )["executionArn"]
        deadline = time.monotonic() + wait_seconds
        while True:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if "output" in execution:
            execution["output"] = json.loads(execution["output"])
        return execution

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn)["events"]


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "python -m local.send workflow FILE|JSON (against a running make run)")
