"""The template deploys safely: placeholders refused, state kept, the API limited, the stack observable.

Parameters, Rules and conditions are evaluated here as CloudFormation evaluates them, for the values
samconfig.toml carries and for filled-in ones, so a check that could never fail (or never pass) shows.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from local.template import load_template

from ..conftest import ROOT

REGION = "eu-north-1"
STEMS = ("UpdateContact", "PromoteContact", "ChangeContactType")
FILLED_IN = {
    "EngageBaseUrl": "https://acme.staging.voyado.com",
    "EngageApiKeySecretArn": "arn:aws:secretsmanager:eu-north-1:111122223333:secret:engage-api-key-dev-a1B2c3",
}


@pytest.fixture(scope="module")
def template():
    return load_template()


@pytest.fixture(scope="module")
def resources(template):
    return template["Resources"]


def parameter_values(template, overrides):
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(overrides)
    return values


def evaluate(node, template, values):
    """A Rules / Conditions expression, evaluated as CloudFormation does (the functions we use)."""
    if isinstance(node, dict) and len(node) == 1:
        (function, argument), = node.items()  # fmt: skip
        if function == "Ref":
            return values[argument]
        if function == "Condition":
            return evaluate(template["Conditions"][argument], template, values)
        args = [evaluate(a, template, values) for a in argument] if isinstance(argument, list) else argument
        if function == "Fn::Not":
            return not args[0]
        if function == "Fn::And":
            return all(args)
        if function == "Fn::Or":
            return any(args)
        if function == "Fn::Equals":
            return str(args[0]) == str(args[1])
        if function == "Fn::Contains":
            return args[1] in args[0]
        raise AssertionError(f"not evaluated here: {function}")
    if isinstance(node, list):
        return [evaluate(n, template, values) for n in node]
    return node


def resolve_conditions(node, template, values):
    """A property with its Fn::If resolved and AWS::NoValue removed, other intrinsics kept."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            chosen = yes if evaluate(template["Conditions"][name], template, values) else no
            return resolve_conditions(chosen, template, values)
        out = {k: resolve_conditions(v, template, values) for k, v in node.items()}
        return {k: v for k, v in out.items() if v != {"Ref": "AWS::NoValue"}}
    if isinstance(node, list):
        return [v for v in (resolve_conditions(n, template, values) for n in node) if v != {"Ref": "AWS::NoValue"}]
    return node


def refusals(template, overrides):
    """Why CloudFormation would refuse these parameter values before creating anything (empty: accepted)."""
    values = parameter_values(template, overrides)
    found = []
    for name, parameter in template["Parameters"].items():
        pattern = parameter.get("AllowedPattern")
        if pattern and name in overrides and not re.fullmatch(pattern, values[name]):
            found.append(f"{name}: {parameter.get('ConstraintDescription', pattern)}")
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], template, values):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], template, values):
                found.append(assertion["AssertDescription"])
    return found


def samconfig_environments():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    sections = {env: s for env, s in config.items() if isinstance(s, dict)}  # not `version`
    return {env: s["deploy"]["parameters"] for env, s in sections.items() if "deploy" in s}


def overrides_of(deploy):
    return dict(item.split("=", 1) for item in deploy["parameter_overrides"])


# --- 1. the key's secret: the ARN must be one IAM can grant --------------------------------------


SECRET_ARNS = ["EngageApiKeySecretArn", "ShopsSecretArn"]


@pytest.mark.parametrize("parameter", SECRET_ARNS)
def test_secret_arns_must_carry_the_suffix_secrets_manager_adds(template, parameter):
    pattern = template["Parameters"][parameter]["AllowedPattern"]
    base = "arn:aws:secretsmanager:eu-north-1:111122223333:secret:engage-api-key-dev"
    assert not re.fullmatch(pattern, base), "an ARN without the suffix names no secret: IAM would grant nothing"
    assert re.fullmatch(pattern, base + "-a1B2c3")
    assert re.fullmatch(pattern, "arn:aws:secretsmanager:eu-north-1:111122223333:secret:team/engage.key-Zz9Yy8")
    assert not re.fullmatch(pattern, base + "-XXXXXX"), "the README's placeholder suffix"
    assert not re.fullmatch(pattern, base + "-a1B2c")


def test_the_functions_are_granted_exactly_the_parameter_arns(resources):
    for stem in STEMS:
        statements = resources[f"{stem}Function"]["Properties"]["Policies"][0]["Statement"]
        reads = [s["Resource"] for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
        secrets = next(r for r in reads if isinstance(r, list))
        assert {"Ref": "EngageApiKeySecretArn"} in secrets and {"Ref": "WebhookSecret"} in secrets
        # the digest key: the stack's, or the one the parameter names (every function reads it)
        assert {"Fn::If": ["MakesDigestKey", {"Ref": "DigestKeySecret"}, {"Ref": "DigestKeySecretArn"}]} in reads
        assert "*" not in json.dumps(reads)


# --- 2. nothing lost when the stack is deleted or a resource replaced ----------------------------


def test_cfn_lint_informational_checks_find_no_stateful_resource_left_to_deletion():
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--include-checks", "I", "--regions", REGION]
    result = subprocess.run([*command, "--", "template.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert "I3011" not in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_queues_table_and_signing_secret_are_retained(resources):
    kept = [k for k, v in resources.items() if v["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table")]
    assert len(kept) == 12  # five queues, their dead-letter queues, the records and the audit table
    for logical_id in [*kept, "WebhookSecret", "DigestKeySecret"]:
        assert resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id


def test_each_function_has_its_log_group_with_the_retention_parameter(template, resources):
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    groups = {
        json.dumps(v["Properties"]["LogGroupName"]): v for v in resources.values() if v["Type"] == "AWS::Logs::LogGroup"
    }
    functions = [k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 7  # the three operation functions, erase, the backfill writer, the two intake ones
    for function in functions:
        group = groups[json.dumps({"Fn::Sub": f"/aws/lambda/${{{function}}}"})]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups.values())


# --- 3. placeholders stop the deploy, saying what to fill in ---------------------------------------


@pytest.mark.parametrize("env", sorted(samconfig_environments()))
def test_samconfig_placeholders_are_refused_with_what_to_fill_in(template, env):
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    deploy = samconfig_environments()[env]
    with pytest.raises(InvalidRegionError):  # what sam deploy reports at once, naming the value
        validate_region_name(deploy["region"])
    assert "region" in deploy["region"]
    overrides = overrides_of(deploy)
    found = refusals(template, overrides)
    assert any("EngageBaseUrl" in r and "tenant" in r for r in found), found
    assert any("EngageApiKeySecretArn" in r and "create-secret" in r for r in found), found
    # with only those filled in, the same environment deploys
    assert refusals(template, {**overrides, **FILLED_IN}) == []
    validate_region_name(REGION)


def test_placeholder_tenant_urls_are_refused_real_ones_accepted(template):
    for url in ("https://TENANT.voyado.com", "https://TENANT.staging.voyado.com/"):
        assert refusals(template, {**FILLED_IN, "EngageBaseUrl": url})
    for url in ("https://acme.voyado.com", "https://acme.staging.voyado.com/"):
        assert refusals(template, {**FILLED_IN, "EngageBaseUrl": url}) == []


# --- 4. dashboard and queue alarms --------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(resources, template):
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name in re.findall(r"\$\{([^}]+)\}", body):  # every name the body substitutes exists
        assert name.startswith("AWS::") or name.split(".")[0] in resources or name in template["Parameters"], name
    widgets = json.loads(body)["widgets"]
    metrics = []
    for widget in widgets:
        for line in widget["properties"]["metrics"]:
            options = line[-1] if isinstance(line[-1], dict) else {}
            names = [x for x in line if not isinstance(x, dict)]
            namespace, metric, dims = names[0], names[1], dict(zip(names[2::2], names[3::2], strict=True))
            metrics.append((namespace, metric, dims, options.get("stat", widget["properties"]["stat"])))
    return metrics


def service_names(resources):
    return {
        stem: resources[f"{stem}Function"]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for stem in STEMS
    }


def test_dashboard_shows_each_function_engage_and_the_commands_outcomes(dashboard, resources):
    services = service_names(resources)
    for stem in STEMS:
        function = {"FunctionName": f"${{{stem}Function}}"}
        for metric in ("Invocations", "Errors", "Duration"):
            assert any(m[:3] == ("AWS/Lambda", metric, function) for m in dashboard), (stem, metric)
        service = {"service": services[stem]}  # Powertools' dimension: the function's service name
        for stat in ("p50", "p99"):
            assert ("EngageContactFunctions", "EngageLatency", service, stat) in dashboard
        for metric in ("EngageRetries", "MessagesDeadLettered", "CommandsReplayed"):
            assert any(m[:3] == ("EngageContactFunctions", metric, service) for m in dashboard), (stem, metric)
        queue = {"QueueName": f"${{{stem}Queue.QueueName}}"}
        dlq = {"QueueName": f"${{{stem}DeadLetterQueue.QueueName}}"}
        assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue, "Maximum") in dashboard
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq, "Maximum") in dashboard
    for metric, stem in (("ContactsUpdated", "UpdateContact"), ("ContactsPromoted", "PromoteContact"),
                         ("ContactTypesChanged", "ChangeContactType")):  # fmt: skip
        assert any(m[:3] == ("EngageContactFunctions", metric, {"service": services[stem]}) for m in dashboard)


def test_dashboard_reads_the_namespace_the_functions_publish_to(dashboard, template):
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert {m[0] for m in dashboard} == {"AWS/Lambda", "AWS/SQS", "AWS/ApiGateway", namespace}
    source = (ROOT / "layers/engage_common/engage_contact/observability.py").read_text()
    assert f'Metrics(namespace="{namespace}")' in source


def test_each_queue_alarms_on_its_oldest_message_age(template, resources):
    assert "Default" in template["Parameters"]["QueueAgeAlarmSeconds"]
    alarmed = {}
    for alarm in resources.values():
        props = alarm.get("Properties", {})
        if alarm["Type"] == "AWS::CloudWatch::Alarm" and props.get("MetricName") == "ApproximateAgeOfOldestMessage":
            assert props["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}
            alarmed[props["Dimensions"][0]["Value"]["Fn::GetAtt"][0]] = props
    assert set(alarmed) == {f"{stem}Queue" for stem in (*STEMS, "EraseContact")}


# --- 5. per-client limits, access logs, API error rates -------------------------------------------


def test_waf_rate_limits_each_ip_on_the_api_stage_when_enabled(template, resources):
    acl = resources["ApiWebAcl"]
    association = resources["ApiWebAclAssociation"]
    assert acl["Condition"] == association["Condition"] == "WafEnabled"
    assert evaluate(template["Conditions"]["WafEnabled"], template, parameter_values(template, {}))
    disabled = parameter_values(template, {"ApiWaf": "disabled"})
    assert not evaluate(template["Conditions"]["WafEnabled"], template, disabled)
    assert acl["Properties"]["Scope"] == "REGIONAL"
    rule = acl["Properties"]["Rules"][0]
    assert rule["Action"] == {"Block": {}}
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP" and rate["Limit"] == {"Ref": "ApiRateLimitPerIp"}
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("/restapis/${ContactsApi}/stages/${ContactsApi.Stage}")


def test_access_logs_name_the_request_never_its_body(resources):
    api = resources["ContactsApi"]["Properties"]
    setting = api["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(setting["Format"])
    assert {"requestId", "ip", "method", "path", "status", "latency"} <= set(fields)
    assert fields["ip"] == "$context.identity.sourceIp" and fields["path"] == "$context.resourcePath"
    for leak in ("$input", "body", "header", "querystring", "authorizer"):
        assert leak not in setting["Format"].lower()


@pytest.mark.parametrize("code", ["4XX", "5XX"])
def test_api_error_rates_alarm(resources, code):
    alarm = resources[f"Api{code}ErrorRateAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert stats["errors"]["MetricName"] == f"{code}Error" and stats["requests"]["MetricName"] == "Count"
    for metric in stats.values():
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims["ApiName"] == resources["ContactsApi"]["Properties"]["Name"]
        assert dims["Stage"] == resources["ContactsApi"]["Properties"]["StageName"]
    expression = next(m for m in alarm["Metrics"] if m.get("ReturnData"))["Expression"]
    assert "errors / requests" in expression
    assert 0 < alarm["Threshold"] < 1


# --- 6. no open, unsigned write API ---------------------------------------------------------------


def deny_statements(api):
    statements = api["Auth"]["ResourcePolicy"]["CustomStatements"]
    return [s for s in statements if s["Effect"] == "Deny"]


def test_signing_off_makes_the_api_private_to_one_vpc_endpoint(template, resources):
    values = parameter_values(template, {"WebhookSigning": "off", "ApiVpcEndpointId": "vpce-0123456789abcdef0"})
    api = resolve_conditions(resources["ContactsApi"]["Properties"], template, values)
    assert api["EndpointConfiguration"] == {"Type": "PRIVATE", "VPCEndpointIds": [{"Ref": "ApiVpcEndpointId"}]}
    (deny,) = deny_statements(api)
    assert deny["Action"] == "execute-api:Invoke" and deny["Resource"] == "execute-api:/*"
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceVpce": {"Ref": "ApiVpcEndpointId"}}}


def test_signing_required_keeps_a_regional_api_without_the_vpc_deny(template, resources):
    api = resolve_conditions(resources["ContactsApi"]["Properties"], template, parameter_values(template, {}))
    assert api["EndpointConfiguration"] == {"Type": "REGIONAL"}
    assert deny_statements(api) == []


def test_signing_off_without_a_vpc_endpoint_is_refused(template):
    found = refusals(template, {**FILLED_IN, "WebhookSigning": "off"})
    assert any("ApiVpcEndpointId" in r for r in found), found
    private = {**FILLED_IN, "WebhookSigning": "off", "ApiVpcEndpointId": "vpce-0123456789abcdef0"}
    assert refusals(template, private) == []
    assert refusals(template, {**FILLED_IN, "ApiVpcEndpointId": "not-an-endpoint"})


# --- 7. hygiene: redrive only from the own queue, hashed requirements -------------------------------


def test_each_dead_letter_queue_accepts_only_its_own_source_queue(resources):
    for stem in STEMS:
        allow = resources[f"{stem}DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
        assert allow["redrivePermission"] == "byQueue"
        (arn,) = allow["sourceQueueArns"]
        name = resources[f"{stem}Queue"]["Properties"]["QueueName"]["Fn::Sub"]
        assert arn["Fn::Sub"] == f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{name}"
        assert resources[f"{stem}Queue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
            "Fn::GetAtt": [f"{stem}DeadLetterQueue", "Arn"]
        }


REQUIREMENTS = ("layers/engage_common/requirements.txt", "requirements/dev.txt", "requirements/sam.txt")


def pins(path):
    """{name: (version, hashes)} of a hashed requirements file."""
    text = (ROOT / path).read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"{path}: not pinned with hashes: {line}"
        found[match[1].lower().replace("_", "-")] = (match[2], match[3].split())
    return found


@pytest.mark.parametrize("path", REQUIREMENTS)
def test_requirements_pin_every_package_with_hashes(path):
    assert pins(path)


def test_dev_requirements_carry_the_layers_exact_pins():
    dev = pins("requirements/dev.txt")
    for name, (version, _) in pins(REQUIREMENTS[0]).items():
        assert dev[name][0] == version, name


def test_make_deps_installs_with_require_hashes():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert len(installs) == 2
    assert all("--require-hashes" in line for line in installs)
