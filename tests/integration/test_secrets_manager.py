"""Reading secrets without a boto3 client: moto's Secrets Manager, and an AWS stand-in for what moto cannot do.

moto's in-process mock answers requests-level calls to AWS's addresses, so these
reads never leave the process; the stand-in for throttling, outages and
signatures is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from engage_contact.aws.secrets_manager import SecretsManager, region_of, resolve_endpoint
from engage_contact.errors import DependencyUnavailable

from ..conftest import REGION

# --- against moto ----------------------------------------------------------------------------------


@pytest.fixture
def http_requests(monkeypatch):
    """Every HTTP request sent through requests from now on (counted above moto's interception)."""
    import requests

    sent = []
    real = requests.Session.send

    def send(session, request, **kwargs):
        sent.append(request.url)
        return real(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    return sent


def test_a_secret_is_read_by_arn_and_by_name(aws, http_requests):
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="k", SecretString="v1")["ARN"]
    client = SecretsManager()
    assert client.get_secret_string(arn) == "v1"
    assert client.get_secret_string("k") == "v1"
    assert len(http_requests) == 2


def test_a_secret_in_another_region_is_read_in_its_own_region(aws):
    arn = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(Name="far", SecretString="x")["ARN"]
    assert ":eu-west-1:" in arn
    assert SecretsManager().get_secret_string(arn) == "x"


def test_a_binary_secret_is_read_as_text(aws):
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="b", SecretBinary=b"bin-key")["ARN"]
    assert SecretsManager().get_secret_string(arn) == "bin-key"


def test_a_missing_secret_is_named_by_its_error_code_and_not_retried(aws, http_requests):
    client = SecretsManager(sleep=lambda _: pytest.fail("not retried"))
    with pytest.raises(DependencyUnavailable, match="ResourceNotFoundException"):
        client.get_secret_string(f"arn:aws:secretsmanager:{REGION}:123456789012:secret:none")
    assert len(http_requests) == 1


def test_the_new_value_is_read_after_a_rotation(aws):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(Name="r", SecretString="old")["ARN"]
    client = SecretsManager()
    assert client.get_secret_string(arn) == "old"
    secrets.put_secret_value(SecretId=arn, SecretString="new")
    assert client.get_secret_string(arn) == "new"


# --- the endpoint, as botocore would choose it --------------------------------------------------------


@pytest.fixture
def clean_endpoint_env(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                 "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def boto3_endpoint(region):
    """Where a real boto3 client would send GetSecretValue: stopped just before it is sent."""

    class Stop(Exception):
        pass

    def stop(request, **_):
        raise Stop(request.url)

    client = boto3.client("secretsmanager", region_name=region, aws_access_key_id="x", aws_secret_access_key="y")
    client.meta.events.register("before-send.secrets-manager.GetSecretValue", stop)
    with pytest.raises(Stop) as stopped:
        client.get_secret_value(SecretId="x")
    return str(stopped.value.args[0]).rstrip("/")


# (The isolated partitions are left out: there botocore's older region catalogue refuses dual-stack before the
# rule set is asked; this reader asks only the rule set.)
@pytest.mark.parametrize("region", ["eu-north-1", "us-east-1", "cn-north-1", "us-gov-west-1", "ap-southeast-7"])
@pytest.mark.parametrize("flag", [None, "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"])
def test_the_endpoint_is_the_one_boto3_would_call(clean_endpoint_env, region, flag):
    if flag:
        clean_endpoint_env.setenv(flag, "true")
    try:
        expected = boto3_endpoint(region)
    except Exception as refused:  # a combination botocore refuses is refused here too
        with pytest.raises(DependencyUnavailable):
            resolve_endpoint(region)
        assert type(refused).__name__ == "EndpointResolutionError"
        return
    assert resolve_endpoint(region) == expected


def test_the_usual_endpoints(clean_endpoint_env):
    assert resolve_endpoint("eu-north-1") == "https://secretsmanager.eu-north-1.amazonaws.com"
    assert resolve_endpoint("cn-north-1") == "https://secretsmanager.cn-north-1.amazonaws.com.cn"
    clean_endpoint_env.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    assert resolve_endpoint("us-east-1") == "https://secretsmanager-fips.us-east-1.amazonaws.com"


def test_a_configured_endpoint_wins_the_service_one_first(clean_endpoint_env):
    clean_endpoint_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4001")
    assert resolve_endpoint("eu-north-1") == "http://127.0.0.1:4001"
    clean_endpoint_env.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4002")
    assert resolve_endpoint("eu-north-1") == "http://127.0.0.1:4002"
    clean_endpoint_env.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert resolve_endpoint("eu-north-1") == "https://secretsmanager.eu-north-1.amazonaws.com"


def test_an_impossible_endpoint_is_refused_with_the_reason(clean_endpoint_env):
    with pytest.raises(DependencyUnavailable, match="Region"):
        resolve_endpoint(None)
    clean_endpoint_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4001")
    clean_endpoint_env.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    with pytest.raises(DependencyUnavailable, match="FIPS"):
        resolve_endpoint("eu-north-1")


def test_the_region_is_the_arns_own_else_the_functions(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert region_of("arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf") == "eu-west-1"
    assert region_of("engage-api-key") == "eu-north-1"
    assert region_of("arn:aws:ssm:eu-west-1:123456789012:parameter/k") == "eu-north-1"


# --- a stand-in for Secrets Manager on 127.0.0.1: throttling, outages, signatures ----------------------


class StandIn:
    """Answers each POST with the next scripted (status, body) and records what it received."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.received = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stand_in.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                status, answer, *headers = stand_in.answers.pop(0) if stand_in.answers else (500, {})
                data = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in (headers[0] if headers else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in(clean_endpoint_env):
    servers = []

    def start(*answers):
        server = StandIn(answers)
        servers.append(server)
        clean_endpoint_env.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", server.url)
        return server

    for name, value in {"AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "AKIDSTANDIN", "AWS_SECRET_ACCESS_KEY": "s",
                        "AWS_SESSION_TOKEN": "token-1"}.items():  # fmt: skip
        clean_endpoint_env.setenv(name, value)
    clean_endpoint_env.delenv("AWS_PROFILE", raising=False)
    yield start
    for server in servers:
        server.close()


ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:engage-AbCdEf"
THROTTLED = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
FOUND = (200, {"ARN": ARN, "Name": "engage", "SecretString": "the-key"})


def test_the_request_is_signed_getsecretvalue(stand_in):
    server = stand_in(FOUND)
    assert SecretsManager().get_secret_string(ARN) == "the-key"
    [seen] = server.received
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["path"] == "/" and seen["body"] == {"SecretId": ARN}
    assert headers["x-amz-target"] == "secretsmanager.GetSecretValue"
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert headers["x-amz-security-token"] == "token-1"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/")
    assert f"/{REGION}/secretsmanager/aws4_request" in headers["authorization"]
    assert "x-amz-target" in headers["authorization"].split("SignedHeaders=")[1]


def test_a_throttled_read_is_tried_once_more(stand_in):
    server = stand_in(THROTTLED, FOUND)
    waits = []
    assert SecretsManager(sleep=waits.append).get_secret_string(ARN) == "the-key"
    assert len(server.received) == 2 and len(waits) == 1 and 0 < waits[0] <= 0.5


def test_an_outage_is_dependency_unavailable_after_two_attempts(stand_in):
    server = stand_in((500, {"__type": "InternalServiceError"}), (503, {}))
    with pytest.raises(DependencyUnavailable, match=r"HTTP 503"):
        SecretsManager(sleep=lambda _: None).get_secret_string(ARN)
    assert len(server.received) == 2


def test_access_denied_is_not_retried_and_its_message_is_not_repeated(stand_in):
    server = stand_in((400, {"__type": "com.amazonaws.secretsmanager#AccessDeniedException",
                             "Message": f"User is not authorized to access {ARN}"}))  # fmt: skip
    with pytest.raises(DependencyUnavailable) as raised:
        SecretsManager(sleep=lambda _: pytest.fail("not retried")).get_secret_string(ARN)
    assert "AccessDeniedException (HTTP 400)" in str(raised.value) and "authorized" not in str(raised.value)
    assert len(server.received) == 1


def test_an_unreachable_endpoint_is_dependency_unavailable(stand_in, clean_endpoint_env):
    server = stand_in()
    server.close()  # nothing listens there any more
    with pytest.raises(DependencyUnavailable, match="ConnectionError"):
        SecretsManager(sleep=lambda _: None).get_secret_string(ARN)


def test_an_answer_without_a_value_is_dependency_unavailable(stand_in):
    stand_in((200, {"ARN": ARN}))
    with pytest.raises(DependencyUnavailable, match="without a secret value"):
        SecretsManager().get_secret_string(ARN)


def test_a_binary_value_that_is_not_text_is_refused(stand_in):
    stand_in((200, {"ARN": ARN, "SecretBinary": base64.b64encode(b"\xff\xfe").decode()}))
    with pytest.raises(DependencyUnavailable, match="UTF-8"):
        SecretsManager().get_secret_string(ARN)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_failure_never_followed_with_the_signed_headers(stand_in, status):
    elsewhere = stand_in(FOUND)  # another host that would gladly take the session token
    server = stand_in((status, {}, {"Location": f"{elsewhere.url}/"}))
    with pytest.raises(DependencyUnavailable, match=f"redirect.*HTTP {status}") as raised:
        SecretsManager(sleep=lambda _: pytest.fail("not retried")).get_secret_string(ARN)
    assert len(server.received) == 1 and elsewhere.received == []
    assert "token-1" not in str(raised.value)


# --- credentials beyond the environment's keys -----------------------------------------------------------


@pytest.fixture
def no_env_keys(stand_in, clean_endpoint_env, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):  # fmt: skip
        clean_endpoint_env.delenv(name, raising=False)
    clean_endpoint_env.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookups, ever
    clean_endpoint_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    credentials = tmp_path / "credentials"
    clean_endpoint_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    return credentials


def test_without_keys_in_the_environment_botocores_chain_is_used(stand_in, no_env_keys, clean_endpoint_env):
    no_env_keys.write_text("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s\n"
                           "[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = s\n")  # fmt: skip
    server = stand_in(FOUND)
    assert SecretsManager().get_secret_string(ARN) == "the-key"
    clean_endpoint_env.setenv("AWS_PROFILE", "other")
    server.answers.append(FOUND)
    assert SecretsManager().get_secret_string(ARN) == "the-key"
    credentials = [r["headers"]["Authorization"].split("Credential=")[1].split("/")[0] for r in server.received]
    assert credentials == ["AKIDDEFAULT", "AKIDOTHER"]


def test_no_credentials_at_all_is_dependency_unavailable(stand_in, no_env_keys):
    server = stand_in(FOUND)
    with pytest.raises(DependencyUnavailable, match="no AWS credentials"):
        SecretsManager().get_secret_string(ARN)
    assert server.received == []
