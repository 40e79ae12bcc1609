"""Read template.yaml the way the local stack needs it, so local and deployed cannot drift apart.

Functions (code folder, handler, environment), their API routes and queues,
the queues' FIFO and redrive settings: all come from the template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
LAYER = ROOT / "layers" / "engage_common"


class _CfnLoader(yaml.SafeLoader):
    """CloudFormation's short-form tags read as {"Ref": …} / {"Fn::GetAtt": …} / {"Fn::X": …}."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class QueueSpec:
    logical_id: str
    fifo: bool
    content_based_deduplication: bool
    visibility_timeout: int
    dead_letter: str | None = None
    max_receive_count: Any = None  # a number, or the template's !FindInMap: see `resolve`

    @property
    def name(self) -> str:
        return f"{self.logical_id}.fifo" if self.fifo else self.logical_id


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    timeout: int
    routes: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    integration_timeout: float = 29.0  # seconds API Gateway waits for the function (its events' TimeoutInMillis)
    queue: str | None = None
    batch_size: int = 10
    batching_window: float = 0.0  # MaximumBatchingWindowInSeconds: how long a batch may wait to fill

    @property
    def name(self) -> str:
        """functions/<name>/: update_contact, promote_contact, change_contact_type."""
        return self.code_uri.name


@dataclass
class StackSpec:
    functions: dict[str, FunctionSpec]
    queues: dict[str, QueueSpec]
    resources: dict[str, Any]
    parameters: dict[str, Any]
    mappings: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)

    def function_for_route(self, method: str, path: str) -> FunctionSpec | None:
        return next((f for f in self.functions.values() if (method, path) in f.routes), None)

    def function_routed(self, method: str, path: str) -> FunctionSpec:
        """The function at a route; an error naming the route when the template has none there."""
        function = self.function_for_route(method, path)
        if function is None:
            raise ValueError(f"the template routes no function at {method} {path}")
        return function

    def function_named(self, name: str) -> FunctionSpec:
        return next(f for f in self.functions.values() if f.name == name)

    def queue_of(self, function: FunctionSpec) -> QueueSpec:
        """The queue a function polls; an error naming it when the template gives it none."""
        if function.queue is None:
            raise ValueError(f"{function.logical_id} polls no queue in the template")
        return self.queues[function.queue]

    def dead_letter_of(self, queue: QueueSpec) -> QueueSpec:
        """A queue's dead-letter queue; an error naming it when the template gives it none."""
        if queue.dead_letter is None:
            raise ValueError(f"{queue.logical_id} has no dead-letter queue in the template")
        return self.queues[queue.dead_letter]


def read_stack(path: Path = TEMPLATE) -> StackSpec:
    template = load_template(path)
    resources = template["Resources"]
    globals_ = template.get("Globals", {}).get("Function", {})
    queues = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::SQS::Queue":
            continue
        props = resource.get("Properties", {})
        redrive = props.get("RedrivePolicy") or {}
        target = redrive.get("deadLetterTargetArn")
        queues[logical_id] = QueueSpec(
            logical_id=logical_id,
            fifo=bool(props.get("FifoQueue")),
            content_based_deduplication=bool(props.get("ContentBasedDeduplication")),
            visibility_timeout=int(props.get("VisibilityTimeout", 30)),
            dead_letter=target["Fn::GetAtt"][0] if isinstance(target, dict) else None,
            max_receive_count=redrive.get("maxReceiveCount"),
        )
    functions = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        spec = FunctionSpec(
            logical_id=logical_id,
            code_uri=ROOT / props["CodeUri"].rstrip("/"),
            handler=props.get("Handler", globals_.get("Handler")),
            environment=env,
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
        )
        for event in props.get("Events", {}).values():
            if event["Type"] == "Api":
                spec.routes.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
                spec.integration_timeout = int(event["Properties"].get("TimeoutInMillis", 29000)) / 1000
            elif event["Type"] == "SQS":
                spec.queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                spec.batch_size = int(event["Properties"].get("BatchSize", 10))
                spec.batching_window = float(event["Properties"].get("MaximumBatchingWindowInSeconds", 0))
        functions[logical_id] = spec
    return StackSpec(
        functions,
        queues,
        resources,
        template.get("Parameters", {}),
        template.get("Mappings", {}),
        template.get("Conditions", {}),
    )


def resolve(
    value: Any, refs: dict[str, str], mappings: dict[str, Any] | None = None, conditions: dict[str, Any] | None = None
) -> str:
    """An environment value with its !Ref, !FindInMap and !If resolved from `refs` (parameters, resources),
    `mappings` and the template's `conditions` (!Equals, !Not of refs)."""
    if isinstance(value, dict) and "Fn::If" in value:
        name, when_true, when_false = value["Fn::If"]
        return resolve(when_true if _holds((conditions or {})[name], refs) else when_false, refs, mappings, conditions)
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        name, key, attribute = (resolve(part, refs, mappings) for part in value["Fn::FindInMap"])
        return str((mappings or {})[name][key][attribute])
    if isinstance(value, dict) and "Ref" in value:
        return refs[value["Ref"]]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return refs[f"{logical_id}.{attribute}"]
    return str(value)


def _holds(condition: Any, refs: dict[str, str]) -> bool:
    if "Fn::Not" in condition:
        return not _holds(condition["Fn::Not"][0], refs)
    if "Fn::Equals" in condition:
        left, right = (resolve(part, refs) for part in condition["Fn::Equals"])
        return left == right
    raise ValueError(f"a condition the local stack does not evaluate: {condition}")


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make run (python -m local.stack), which reads template.yaml with it")
