"""What each function's role may do, as the deployed stack would grant it: template.yaml through SAM's translator.

SAM turns a function's `Policies` (inline statements and policy templates such as
`DynamoDBCrudPolicy`) into an `AWS::IAM::Role`; its translator (in the SAM CLI's
environment, `.venv-sam`) does that here the same way, so a policy template is expanded
to the statements AWS would see. The intrinsic functions left in the roles (`!Ref`,
`!GetAtt`, `!Sub`, `!If` on the template's conditions) are then resolved against the
resources a test made (moto's ARNs). Used by the IAM test; never deployed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from .template import ROOT, TEMPLATE

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
REGION = "eu-north-1"
NO_VALUE = object()

# SAM's translator wants S3 locations for code; what they are does not change a role.
_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    properties = resource.get("Properties", {})
    for name in ("CodeUri", "DefinitionUri", "ContentUri"):
        if isinstance(properties.get(name), str):
            properties[name] = "s3://bucket/key"

class NoManagedPolicies:
    def load(self):
        return {}

json.dump(transform(template, json.loads(sys.argv[2]), NoManagedPolicies()), sys.stdout)
"""


def translated_template(parameters: dict[str, str] | None = None, path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as SAM deploys it (CloudFormation only: every function's role written out)."""
    if not SAM_PYTHON.exists():
        raise FileNotFoundError("the SAM CLI's environment (.venv-sam) is missing: run `make deps`")
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION, "SAM_CLI_TELEMETRY": "0"}
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", _TRANSLATE, str(path), json.dumps(parameters or {})],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"SAM could not translate {path.name}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


class Resolver:
    """Resolve a role's intrinsic functions: `refs` names parameters, resources (`Logical`, `Logical.Arn`)."""

    def __init__(self, template: dict[str, Any], refs: dict[str, str]) -> None:
        self.template = template
        parameters = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
        self.refs = {
            **parameters,
            "AWS::Region": REGION,
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::StackName": "engage",
            **refs,
        }

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((name, arg),) = node.items()
            if name == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.refs[arg]
            if name == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.refs[f"{logical}.{attribute}"]
            if name == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if name == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if name == "Fn::Not":
                return not self.value(arg[0])
            if name == "Fn::And":
                return all(self.value(a) for a in arg)
            if name == "Fn::Or":
                return any(self.value(a) for a in arg)
            if name == "Condition":
                return self.condition(arg)
            if name == "Fn::Sub":
                return self.sub(*(arg if isinstance(arg, list) else [arg, {}]))
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        local = {k: self.value(v) for k, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(local[name] if name in local else self.refs[name])

        return re.sub(r"\$\{([^}!]+)\}", one, text)


def function_statements(template: dict[str, Any], refs: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each function's (logical id's) Allow statements from its role's inline policies, resolved."""
    resolver = Resolver(template, refs)
    resources = template["Resources"]
    statements: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        found = statements[logical_id] = []
        for policy in resources[role]["Properties"].get("Policies", []):
            for statement in resolver.value(policy["PolicyDocument"]["Statement"]):
                found.append(statement)
    return statements


# The AWS managed policies SAM attaches, by name: what AWS documents them to allow that our code or
# Lambda's event source (with the function's role) calls.
MANAGED = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    ],
    "AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        },
    ],
}


def managed_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The statements of the AWS managed policies SAM attaches to a function's role (an unknown one: an error)."""
    resources = template["Resources"]
    role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    arns = Resolver(template, {}).value(resources[role]["Properties"].get("ManagedPolicyArns", []))
    return [statement for arn in arns for statement in MANAGED[arn.rsplit("/", 1)[-1]]]


# moto names an action by its API call; IAM authorizes a batch call by its single action.
BATCH_CALLS = {
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
}


def as_moto_names_them(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements with each batch call beside the single action IAM authorizes it by."""
    named = []
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        named.append({**statement, "Action": [*actions, *(BATCH_CALLS[a] for a in actions if a in BATCH_CALLS)]})
    return named


# IAM authorizes each part of a DynamoDB transaction by the action it stands for (moto: by the call's name).
TRANSACT_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "Get": "GetItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _body(request: Any) -> dict[str, Any]:
    try:
        body = json.loads(request._body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _table_arn(request: Any, table: str) -> str:
    return f"arn:aws:dynamodb:{request._region}:{request.account_id}:table/{table}"


def _transaction_parts(request: Any) -> list[tuple[str, str]]:
    """(action, table ARN) of each part of a TransactWriteItems / TransactGetItems call."""
    parts = []
    for item in _body(request).get("TransactItems") or []:
        for kind, part in item.items():
            parts.append((f"dynamodb:{TRANSACT_PARTS[kind]}", _table_arn(request, part.get("TableName", ""))))
    return parts


def _resource_named(request: Any) -> str | None:
    """The ARN a DynamoDB, Secrets Manager or SQS GetQueueUrl call is about (moto checks those against "*")."""
    service = request._action.split(":", 1)[0]
    body = _body(request)
    if service == "dynamodb" and isinstance(body.get("TableName"), str):
        return _table_arn(request, body["TableName"])
    if service == "dynamodb" and isinstance(body.get("RequestItems"), dict) and len(body["RequestItems"]) == 1:
        return _table_arn(request, next(iter(body["RequestItems"])))
    if service == "sqs" and isinstance(body.get("QueueName"), str):
        owner = body.get("QueueOwnerAWSAccountId") or request.account_id
        return f"arn:aws:sqs:{request._region}:{owner}:{body['QueueName']}"
    if service == "secretsmanager" and str(body.get("SecretId", "")).startswith("arn:"):
        return body["SecretId"]
    return None


class EnforcedIam:
    """moto's IAM enforcement switched on, each check written down (action, resource, allowed).

    moto checks every call's action against the caller's policies, and SQS calls against the
    queue's ARN it names by URL; DynamoDB, Secrets Manager and GetQueueUrl calls it checks against
    "*" only, so the table's, secret's or queue's ARN the call names is filled in here before moto's
    own check runs (as AWS checks them); a DynamoDB transaction is checked part by part, by the action
    each part stands for, as IAM authorizes it.
    """

    def __init__(self) -> None:
        self.checks: list[tuple[str, str, bool]] = []

    def denied(self) -> list[tuple[str, str]]:
        return [(action, resource) for action, resource, allowed in self.checks if not allowed]

    def allowed_actions(self) -> set[str]:
        return {action for action, _, allowed in self.checks if allowed}

    def __enter__(self) -> EnforcedIam:
        from moto.core.authorization import enable_iam_authentication
        from moto.iam.access_control import IAMRequest

        checks, original = self.checks, IAMRequest.check_action_permitted

        def check_one(request: Any, action: str, resource: str) -> None:
            called, request._action = request._action, action
            try:
                original(request, resource)
            except Exception:
                checks.append((action, resource, False))
                raise
            finally:
                request._action = called
            checks.append((action, resource, True))

        def check_action_permitted(request: Any, resource: str) -> None:
            if request._action in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
                for action, table in _transaction_parts(request):
                    check_one(request, action, table)
                return
            check_one(request, request._action, _resource_named(request) or resource if resource == "*" else resource)

        self._restore = lambda: setattr(IAMRequest, "check_action_permitted", original)
        IAMRequest.check_action_permitted = check_action_permitted  # type: ignore[method-assign,assignment]  # moto patched
        self._enabled = enable_iam_authentication()
        self._enabled.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._enabled.__exit__(*exc)
        self._restore()


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make test (tests/integration/test_iam.py builds every role with it)")
