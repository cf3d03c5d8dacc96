#!/usr/bin/env python3
"""Deterministic generator for trailwatch's sample CloudTrail logs.

Python 3.11+, standard library only.  Run from anywhere:

    python3 sample-logs/generate.py

It (re)writes, next to this script:

  AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz         log files
  AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/*.json.gz  one digest
  expected-alerts.tsv                                                ground truth

Everything is derived from one seeded random.Random and written as gzip with
mtime=0 and no file name in the header, so two runs give byte-identical files.

All account ids, access keys, IPs and names are fictional.  Source IPs come
from the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)
and from private ranges; access key ids end in "EXAMPLE".

The shipped rule set is the 4 mandatory rules plus the 15 CIS AWS Foundations
monitoring rules (rules/cis/).  Planted events (the cases the rules must and
must not flag) have eventIDs of two forms:

  feed<R><K><NN>-0000-4000-8000-000000000000   a case for mandatory rule R
                                                (1-4, 0 = no rule)
  c15<CC><K><NN>-0000-4000-8000-000000000000   a case for CIS control 4.CC
                                                (01-15; "c15" reads "CIS")

K is "a" for a positive of that rule (must alert) or "b" for a tricky negative
(must not alert), and NN is a counter.  The rules overlap (CIS 4.3 is root
usage, 4.10 is every security group change, ...), so a planted event may also
fire other rules; each one declares those with `also=` where its id is made,
and the script asserts that the reference evaluator gives exactly the declared
set for every planted event.  Background events use random uuid4 eventIDs and
fire no rule at all: their errors are throttling and missing keys, never
authorization failures, and they change no configuration.  Before writing
expected-alerts.tsv the script re-reads every file it wrote and runs a small
reference implementation of all 19 rules (see `evaluate` below), written from
the rule texts (CIS: the benchmark's metric filters), not by running trailwatch.

The shipped correlations (rules/correlations/) get three planted scenarios and
a near miss for each (`correlation_scenarios`, eventIDs ccc<SS><K><NN>-...),
and `correlate` predicts every correlation alert, SigmaHQ translations
included, over all records in the order `scan` commits them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import random
import shutil
import string
import uuid
from pathlib import Path

SEED = 20261005
OUT = Path(__file__).resolve().parent
LOG_ROOT = OUT / "AWSLogs"

ACCT_A = "111122223333"  # fictional "prod"
ACCT_B = "444455556666"  # fictional "staging"
ACCOUNTS = [ACCT_A, ACCT_B]
REGIONS = ["us-east-1", "eu-west-1"]
DAYS = [dt.date(2026, 10, 5), dt.date(2026, 10, 6), dt.date(2026, 10, 7)]
TRAIL_NAME = "management-events"
TRAIL_BUCKET = "acme-cloudtrail-logs-111122223333"

rng = random.Random(SEED)

UPPER_ALNUM = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def rid(n: int, alphabet: str = UPPER_ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def hexs(n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def new_uuid() -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# Rule names, as in rules/.
MANDATORY = {1: "root_account_usage", 2: "console_login_without_mfa", 3: "kms_key_deletion",
             4: "security_group_opened_to_world"}
CIS = {1: "cis_4_01_unauthorized_api_calls", 2: "cis_4_02_console_login_without_mfa", 3: "cis_4_03_root_usage",
       4: "cis_4_04_iam_policy_changes", 5: "cis_4_05_cloudtrail_config_changes",
       6: "cis_4_06_console_auth_failures", 7: "cis_4_07_cmk_disabled_or_deleted",
       8: "cis_4_08_s3_bucket_policy_changes", 9: "cis_4_09_config_changes",
       10: "cis_4_10_security_group_changes", 11: "cis_4_11_nacl_changes", 12: "cis_4_12_network_gateway_changes",
       13: "cis_4_13_route_table_changes", 14: "cis_4_14_vpc_changes", 15: "cis_4_15_organizations_changes"}

# eventID -> the exact set of rules that planted event must fire (see the docstring).
EXPECT: dict[str, set[str]] = {}


def _declare(eid: str, primary: str | None, kind: str, also) -> str:
    also = set(also)
    assert primary not in also and eid not in EXPECT, eid
    EXPECT[eid] = ({primary} if kind == "a" else set()) | also
    return eid


def planted_id(rule: int, kind: str, n: int, also=()) -> str:
    """A planted case for mandatory rule `rule` (0: none) that also fires the rules in `also`."""
    assert kind in ("a", "b") and 0 <= rule <= 4 and (rule or kind == "b")
    return _declare(f"feed{rule}{kind}{n:02d}-0000-4000-8000-000000000000", MANDATORY.get(rule), kind, also)


def cis_id(control: int, kind: str, n: int, also=()) -> str:
    """A planted case for CIS control 4.`control` that also fires the rules in `also`."""
    assert kind in ("a", "b") and 1 <= control <= 15
    return _declare(f"c15{control:02d}{kind}{n:02d}-0000-4000-8000-000000000000", CIS[control], kind, also)


def ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def aws_date(t: dt.datetime) -> str:
    """The 'Oct 5, 2026, 9:12:03 AM' style used inside responseElements."""
    h = t.hour % 12 or 12
    ampm = "AM" if t.hour < 12 else "PM"
    return f"{t.strftime('%b')} {t.day}, {t.year}, {h}:{t.minute:02d}:{t.second:02d} {ampm}"


def access_key(prefix: str = "AKIA") -> str:
    return prefix + rid(9) + "EXAMPLE"


def s3_request_id() -> str:
    return rid(16, "0123456789ABCDEF")


def amz_id_2() -> str:
    return rid(76, ALNUM + "+/") + "="


def public_ip() -> str:
    net = rng.choice(["192.0.2", "198.51.100", "203.0.113"])
    return f"{net}.{rng.randint(2, 250)}"


def private_ip() -> str:
    return f"10.{rng.choice([0, 1, 20])}.{rng.randint(0, 31)}.{rng.randint(4, 250)}"


TLS_CIPHERS = [
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
]


def tls(host: str) -> dict:
    v, c = rng.choice(TLS_CIPHERS)
    return {"tlsVersion": v, "cipherSuite": c, "clientProvidedHostHeader": host}


def endpoint(service: str, region: str) -> str:
    if service in ("iam", "signin"):
        return {"iam": "iam.amazonaws.com", "signin": "signin.aws.amazon.com"}[service]
    if service == "sts":
        return f"sts.{region}.amazonaws.com" if region != "us-east-1" else "sts.amazonaws.com"
    return f"{service}.{region}.amazonaws.com"


UA_CLI = [
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#5.15.0-1064-aws md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#{cmd}",
    "aws-cli/2.18.4 md/awscrt#0.21.5 ua/2.0 os/macos#23.6.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#{cmd}",
]
UA_BOTO = "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env#AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.35.36"
UA_GO = "aws-sdk-go-v2/1.30.5 ua/2.1 os/linux lang/go#1.22.7 md/GOOS#linux md/GOARCH#amd64 api/{api}#{ver} m/E"
UA_TF = "APN/1.0 HashiCorp/1.0 Terraform/1.9.7 (+https://www.terraform.io) terraform-provider-aws/5.70.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.5 ua/2.1 os/linux lang/go#1.22.7 md/GOOS#linux md/GOARCH#amd64 api/{api}#{ver}"
UA_BROWSER = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
]


# --------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------

class Principal:
    """An actor that can appear in userIdentity."""

    def __init__(self, kind: str, acct: str, name: str, **kw):
        self.kind = kind  # iamuser | role
        self.acct = acct
        self.name = name
        self.kw = kw
        self.principal_id = ("AIDA" if kind == "iamuser" else "AROA") + rid(17)
        self.key = access_key("AKIA") if kind == "iamuser" else None
        self.home_ip = kw.get("ip") or public_ip()

    def identity(self, t: dt.datetime, session: str | None = None, mfa: bool = False,
                 console: bool = False, invoked_by: str | None = None) -> dict:
        if self.kind == "iamuser":
            ui = {
                "type": "IAMUser",
                "principalId": self.principal_id,
                "arn": f"arn:aws:iam::{self.acct}:user/{self.name}",
                "accountId": self.acct,
                "accessKeyId": access_key("ASIA") if console else self.key,
                "userName": self.name,
            }
            if console:
                ui["sessionContext"] = {
                    "sessionIssuer": {},
                    "webIdFederationData": {},
                    "attributes": {
                        "creationDate": ts(t - dt.timedelta(seconds=rng.randint(300, 7200))),
                        "mfaAuthenticated": "true" if mfa else "false",
                    },
                }
            return ui
        session = session or self.kw.get("session") or "session"
        path = self.kw.get("path", "/")
        ui = {
            "type": "AssumedRole",
            "principalId": f"{self.principal_id}:{session}",
            "arn": f"arn:aws:sts::{self.acct}:assumed-role/{self.name}/{session}",
            "accountId": self.acct,
            "accessKeyId": access_key("ASIA"),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": self.principal_id,
                    "arn": f"arn:aws:iam::{self.acct}:role{path}{self.name}",
                    "accountId": self.acct,
                    "userName": self.name,
                },
                "webIdFederationData": {},
                "attributes": {
                    "creationDate": ts(t - dt.timedelta(seconds=rng.randint(60, 3300))),
                    "mfaAuthenticated": "true" if mfa else "false",
                },
            },
        }
        if self.kw.get("ec2"):
            ui["sessionContext"]["ec2RoleDelivery"] = "2.0"
        if invoked_by:
            ui["invokedBy"] = invoked_by
        return ui


def make_people(acct: str) -> dict:
    if acct == ACCT_A:
        humans, bot = ["alice", "bob"], "ci-deployer"
        lambdas = ["invoice-export", "thumbnailer", "nightly-report"]
    else:
        humans, bot = ["carol", "dave"], "terraform"
        lambdas = ["etl-loader", "slack-notifier"]
    instances = ["i-0" + hexs(16) for _ in range(3)]
    return {
        "humans": [Principal("iamuser", acct, h) for h in humans],
        "bot": Principal("iamuser", acct, bot, ip=public_ip()),
        "lambda_role": Principal("role", acct, "OpsAutomationRole"),
        "lambdas": lambdas,
        "ec2_role": Principal("role", acct, "app-instance-role", ec2=True),
        "instances": instances,
        "auditor": Principal("role", acct, "SecurityAuditRole", session="audit-scan"),
        "readonly": Principal("role", acct, "ReadOnlyRole"),
        "buckets": [f"acme-{'prod' if acct == ACCT_A else 'staging'}-{s}-{acct}"
                    for s in ("assets", "reports", "backups")],
        "kms_keys": {r: [new_uuid() for _ in range(2)] for r in REGIONS},
        "sgs": ["sg-0" + hexs(16) for _ in range(4)],
    }


PEOPLE = {a: make_people(a) for a in ACCOUNTS}


# --------------------------------------------------------------------------
# record construction
# --------------------------------------------------------------------------

def record(*, acct: str, region: str, t: dt.datetime, ui: dict, source: str, name: str,
           ip: str, ua: str, req, resp, read_only: bool, version: str = "1.09",
           event_type: str = "AwsApiCall", management: bool = True,
           error: tuple[str, str] | None = None, extra: dict | None = None,
           resources: list | None = None, tls_host: str | None = None,
           event_id: str | None = None, request_id: str | None = None,
           console_session: bool = False, after_flags: dict | None = None) -> dict:
    r = {
        "eventVersion": version,
        "userIdentity": ui,
        "eventTime": ts(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": ua,
    }
    if error:
        r["errorCode"], r["errorMessage"] = error
    r["requestParameters"] = req
    r["responseElements"] = resp
    if extra is not None:
        r["additionalEventData"] = extra
    r["requestID"] = request_id or new_uuid()
    r["eventID"] = event_id or new_uuid()
    r["readOnly"] = read_only
    if resources:
        r["resources"] = resources
    r["eventType"] = event_type
    r["managementEvent"] = management
    r["recipientAccountId"] = acct
    if after_flags:
        r.update(after_flags)
    r["eventCategory"] = "Management" if management else "Data"
    if tls_host:
        r["tlsDetails"] = tls(tls_host)
    if console_session:
        r["sessionCredentialFromConsole"] = "true"
    return r


def kms_arn(acct, region, key):
    return f"arn:aws:kms:{region}:{acct}:key/{key}"


def ec2_resp(extra: dict | None = None) -> dict:
    d = {"requestId": new_uuid(), "_return": True}
    if extra:
        d.update(extra)
    return d


def s3_extra(out_bytes: int = 0, auth: str = "AuthHeader") -> dict:
    v, c = rng.choice(TLS_CIPHERS)
    return {
        "SignatureVersion": "SigV4",
        "CipherSuite": c,
        "bytesTransferredIn": 0,
        "AuthenticationMethod": auth,
        "x-amz-id-2": amz_id_2(),
        "bytesTransferredOut": out_bytes,
    }


# --------------------------------------------------------------------------
# background event generators: fn(acct, region, t) -> record
# --------------------------------------------------------------------------

def pick_caller(acct: str, t: dt.datetime, cmd: str = "", api: str = "ec2", ver: str = "1.177.0"):
    """A random ordinary (non-root) caller: (userIdentity, ip, userAgent, tls?, console?)."""
    p = PEOPLE[acct]
    roll = rng.random()
    if roll < 0.25:
        h = rng.choice(p["humans"])
        return h.identity(t), h.home_ip, rng.choice(UA_CLI).format(cmd=cmd or "ec2.describe-instances"), True, False
    if roll < 0.35:
        h = rng.choice(p["humans"])
        return h.identity(t, console=True, mfa=True), h.home_ip, "AWS Internal", True, True
    if roll < 0.50:
        b = p["bot"]
        return b.identity(t), b.home_ip, UA_TF.format(api=api, ver=ver), True, False
    if roll < 0.75:
        lr = p["lambda_role"]
        return lr.identity(t, session=rng.choice(p["lambdas"])), private_ip(), UA_BOTO, True, False
    if roll < 0.90:
        er = p["ec2_role"]
        return er.identity(t, session=rng.choice(p["instances"])), private_ip(), UA_GO.format(api=api, ver=ver), True, False
    a = p["auditor"]
    return a.identity(t), public_ip(), UA_GO.format(api=api, ver=ver), True, False


def ev_ec2_describe(acct, region, t):
    name, req = rng.choice([
        ("DescribeInstances", {"instancesSet": {}, "filterSet": {}}),
        ("DescribeSecurityGroups", {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}),
        ("DescribeVolumes", {"volumeSet": {}, "filterSet": {}}),
        ("DescribeRegions", {"regionSet": {}}),
        ("DescribeVpcs", {"vpcSet": {}, "filterSet": {}}),
        ("DescribeInstanceStatus", {"instancesSet": {}, "filterSet": {}, "includeAllInstances": False}),
    ])
    ui, ip, ua, _, console = pick_caller(acct, t, cmd="ec2." + name.lower())
    err = None
    if ui["type"] == "AssumedRole" and "ReadOnlyRole" not in ui["arn"] and rng.random() < 0.04:
        # throttled, not refused: background traffic fires no rule (CIS 4.1 counts refusals)
        err = ("Client.RequestLimitExceeded", "Request limit exceeded.")
    return record(acct=acct, region=region, t=t, ui=ui, source="ec2.amazonaws.com", name=name,
                  ip=ip, ua=ua, req=req, resp=None, read_only=True, error=err,
                  tls_host=endpoint("ec2", region), console_session=console)


def ev_s3_get(acct, region, t):
    p = PEOPLE[acct]
    bucket = rng.choice(p["buckets"])
    key = rng.choice(["static/img/logo.png", "reports/2026/10/daily.csv", "exports/invoices-2026-09.json",
                      "static/js/app.4f9c2.js", "backups/db/pg-2026-10-04.sql.gz", "config/app.yaml"])
    if rng.random() < 0.6:
        r = p["ec2_role"]
        ui = r.identity(t, session=rng.choice(p["instances"]))
        ip, ua = private_ip(), UA_GO.format(api="s3", ver="1.64.0")
        after = {"vpcEndpointId": "vpce-0" + hexs(16), "vpcEndpointAccountId": acct}
    else:
        r = p["lambda_role"]
        ui = r.identity(t, session=rng.choice(p["lambdas"]))
        ip, ua = public_ip(), UA_BOTO
        after = None
    err = None
    if rng.random() < 0.05:
        err = ("NoSuchKey", "The specified key does not exist.")
    host = f"{bucket}.s3.{region}.amazonaws.com"
    return record(acct=acct, region=region, t=t, ui=ui, source="s3.amazonaws.com", name="GetObject",
                  ip=ip, ua=ua, req={"bucketName": bucket, "Host": host, "key": key}, resp=None,
                  extra=s3_extra(0 if err else rng.randint(800, 4_000_000)), read_only=True,
                  version="1.08", management=False, error=err, request_id=s3_request_id(),
                  resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                             {"accountId": acct, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
                  after_flags=after, tls_host=host)


def ev_s3_list_buckets(acct, region, t):
    ui, ip, ua, _, console = pick_caller(acct, t, cmd="s3.ls", api="s3", ver="1.64.0")
    host = f"s3.{region}.amazonaws.com"
    return record(acct=acct, region=region, t=t, ui=ui, source="s3.amazonaws.com", name="ListBuckets",
                  ip=ip, ua=ua, req={"Host": host}, resp=None, extra=s3_extra(), read_only=True,
                  version="1.09", request_id=s3_request_id(), tls_host=host, console_session=console)


def ev_s3_get_bucket_acl_by_cloudtrail(acct, region, t):
    bucket = f"acme-cloudtrail-logs-{acct}"
    return record(acct=acct, region=region, t=t,
                  ui={"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
                  source="s3.amazonaws.com", name="GetBucketAcl", ip="cloudtrail.amazonaws.com",
                  ua="cloudtrail.amazonaws.com",
                  req={"bucketName": bucket, "Host": f"{bucket}.s3.us-east-1.amazonaws.com", "acl": ""},
                  resp=None, extra=s3_extra(auth="AuthHeader"), read_only=True, version="1.09",
                  request_id=s3_request_id(),
                  resources=[{"accountId": acct, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])


def ev_sts_assume_role(acct, region, t):
    p = PEOPLE[acct]
    role = rng.choice([p["lambda_role"], p["readonly"], p["auditor"]])
    if role is p["lambda_role"]:
        ui = {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}
        ip = ua = "lambda.amazonaws.com"
        session, tls_host = rng.choice(p["lambdas"]), None
    else:
        caller = rng.choice(p["humans"] + [p["bot"]])
        ui, ip = caller.identity(t), caller.home_ip
        ua = rng.choice(UA_CLI).format(cmd="sts.assume-role")
        session, tls_host = f"{caller.name}-{int(t.timestamp())}", endpoint("sts", region)
    role_arn = f"arn:aws:iam::{acct}:role/{role.name}"
    resp = {
        "credentials": {"accessKeyId": access_key("ASIA"),
                        "expiration": aws_date(t + dt.timedelta(hours=1))},
        "assumedRoleUser": {"assumedRoleId": f"{role.principal_id}:{session}",
                            "arn": f"arn:aws:sts::{acct}:assumed-role/{role.name}/{session}"},
    }
    return record(acct=acct, region=region, t=t, ui=ui, source="sts.amazonaws.com", name="AssumeRole",
                  ip=ip, ua=ua, req={"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600},
                  resp=resp, read_only=True, version="1.08",
                  resources=[{"accountId": acct, "type": "AWS::IAM::Role", "ARN": role_arn}],
                  tls_host=tls_host)


def ev_sts_get_caller_identity(acct, region, t):
    ui, ip, ua, _, _ = pick_caller(acct, t, cmd="sts.get-caller-identity", api="sts", ver="1.30.6")
    return record(acct=acct, region=region, t=t, ui=ui, source="sts.amazonaws.com", name="GetCallerIdentity",
                  ip=ip, ua=ua, req=None, resp=None, read_only=True, version="1.08",
                  tls_host=endpoint("sts", region))


def ev_kms_crypto(acct, region, t):
    p = PEOPLE[acct]
    key = rng.choice(p["kms_keys"][region])
    karn = kms_arn(acct, region, key)
    bucket = rng.choice(p["buckets"])
    obj = f"arn:aws:s3:::{bucket}/" + rng.choice(["reports/2026/10/daily.csv", "backups/db/pg-2026-10-04.sql.gz"])
    name = rng.choice(["Decrypt", "Decrypt", "GenerateDataKey"])
    if rng.random() < 0.5:
        # SSE-KMS on behalf of an S3 caller
        ui = p["ec2_role"].identity(t, session=rng.choice(p["instances"]), invoked_by="s3.amazonaws.com")
        ip = ua = "s3.amazonaws.com"
        tls_host = None
    else:
        ui = p["lambda_role"].identity(t, session=rng.choice(p["lambdas"]))
        ip, ua, tls_host = public_ip(), UA_BOTO, endpoint("kms", region)
    if name == "Decrypt":
        req = {"encryptionContext": {"aws:s3:arn": obj}, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    else:
        req = {"keyId": karn, "encryptionContext": {"aws:s3:arn": obj}, "keySpec": "AES_256"}
    return record(acct=acct, region=region, t=t, ui=ui, source="kms.amazonaws.com", name=name,
                  ip=ip, ua=ua, req=req, resp=None, read_only=True, version="1.09",
                  resources=[{"accountId": acct, "type": "AWS::KMS::Key", "ARN": karn}], tls_host=tls_host)


def ev_kms_describe(acct, region, t):
    p = PEOPLE[acct]
    key = rng.choice(p["kms_keys"][region])
    name = rng.choice(["DescribeKey", "ListAliases", "GetKeyRotationStatus", "ListKeys"])
    ui, ip, ua, _, console = pick_caller(acct, t, cmd="kms." + name.lower(), api="kms", ver="1.36.3")
    req = {"keyId": key} if name in ("DescribeKey", "GetKeyRotationStatus") else None
    return record(acct=acct, region=region, t=t, ui=ui, source="kms.amazonaws.com", name=name,
                  ip=ip, ua=ua, req=req, resp=None, read_only=True, version="1.09",
                  resources=[{"accountId": acct, "type": "AWS::KMS::Key",
                              "ARN": kms_arn(acct, region, key)}] if req else None,
                  tls_host=endpoint("kms", region), console_session=console)


def ev_kms_rotate_service(acct, region, t):
    key = rng.choice(PEOPLE[acct]["kms_keys"][region])
    return record(acct=acct, region=region, t=t,
                  ui={"accountId": acct, "invokedBy": "kms.amazonaws.com"},
                  source="kms.amazonaws.com", name="RotateKey", ip="kms.amazonaws.com",
                  ua="kms.amazonaws.com", req=None, resp=None, read_only=False,
                  event_type="AwsServiceEvent", version="1.09",
                  resources=[{"accountId": acct, "type": "AWS::KMS::Key", "ARN": kms_arn(acct, region, key)}],
                  after_flags={"serviceEventDetails": {"keyId": key}})


def ev_cloudtrail(acct, region, t):
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{ACCT_A}:trail/{TRAIL_NAME}"
    name, req = rng.choice([
        ("LookupEvents", {"lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "ConsoleLogin"}],
                          "maxResults": 50}),
        ("LookupEvents", {"startTime": aws_date(t - dt.timedelta(hours=24)), "endTime": aws_date(t)}),
        ("DescribeTrails", {"trailNameList": [], "includeShadowTrails": True}),
        ("GetTrailStatus", {"name": trail_arn}),
        ("GetEventSelectors", {"trailName": trail_arn}),
    ])
    p = PEOPLE[acct]
    if rng.random() < 0.6:
        a = p["auditor"]
        ui, ip, ua, console = a.identity(t), public_ip(), UA_GO.format(api="cloudtrail", ver="1.43.2"), False
    else:
        h = rng.choice(p["humans"])
        ui, ip, ua, console = h.identity(t, console=True, mfa=True), h.home_ip, "AWS Internal", True
    return record(acct=acct, region=region, t=t, ui=ui, source="cloudtrail.amazonaws.com", name=name,
                  ip=ip, ua=ua, req=req, resp=None, read_only=True, version="1.09",
                  tls_host=endpoint("cloudtrail", region), console_session=console)


def ev_iam(acct, region, t):
    # global service: only emitted into us-east-1 files
    p = PEOPLE[acct]
    name = rng.choice(["GetUser", "ListRoles", "ListAttachedRolePolicies", "GetRole", "ListUsers",
                       "GetAccountPasswordPolicy", "ListMFADevices"])
    caller_roll = rng.random()
    if caller_roll < 0.35:
        r = p["readonly"]
        ui, ip, ua = r.identity(t, session=rng.choice(p["humans"]).name), public_ip(), \
            rng.choice(UA_CLI).format(cmd="iam." + name.lower())
    elif caller_roll < 0.65:
        a = p["auditor"]
        ui, ip, ua = a.identity(t), public_ip(), UA_GO.format(api="iam", ver="1.37.3")
    else:
        h = rng.choice(p["humans"])
        ui, ip, ua = h.identity(t), h.home_ip, rng.choice(UA_CLI).format(cmd="iam." + name.lower())
    req = {
        "GetUser": {"userName": rng.choice(p["humans"]).name},
        "ListRoles": None,
        "ListAttachedRolePolicies": {"roleName": p["lambda_role"].name},
        "GetRole": {"roleName": p["ec2_role"].name},
        "ListUsers": {"maxItems": 100},
        "GetAccountPasswordPolicy": None,
        "ListMFADevices": {"userName": rng.choice(p["humans"]).name},
    }[name]
    err = None
    if "ReadOnlyRole" in ui["arn"] and name == "ListUsers":
        err = ("Throttling", "Rate exceeded")
    return record(acct=acct, region="us-east-1", t=t, ui=ui, source="iam.amazonaws.com", name=name,
                  ip=ip, ua=ua, req=req, resp=None, read_only=True, version="1.08", error=err,
                  tls_host=endpoint("iam", region))


def ev_console_login_mfa(acct, region, t):
    h = rng.choice(PEOPLE[acct]["humans"])
    ui = h.identity(t)
    ui["accessKeyId"] = ""
    return console_login(acct, region, t, ui, h.home_ip, mfa_used="Yes")


BACKGROUND = [
    (ev_ec2_describe, 30),
    (ev_s3_get, 22),
    (ev_kms_crypto, 14),
    (ev_sts_assume_role, 8),
    (ev_sts_get_caller_identity, 5),
    (ev_s3_list_buckets, 3),
    (ev_kms_describe, 4),
    (ev_cloudtrail, 4),
    (ev_iam, 8),              # us-east-1 only
    (ev_s3_get_bucket_acl_by_cloudtrail, 1),
    (ev_kms_rotate_service, 0.3),
    (ev_console_login_mfa, 0.6),
]


# --------------------------------------------------------------------------
# shapes used by planted events
# --------------------------------------------------------------------------

def console_login(acct, region, t, ui, ip, *, mfa_used="No", success=True, saml=None,
                  event_id=None, version="1.08") -> dict:
    extra = {"LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_"
                        + region + "_" + hexs(16),
             "MobileVersion": "No", "MFAUsed": mfa_used}
    if saml:
        extra = {"SamlProviderArn": saml, **extra}
    resp = {"ConsoleLogin": "Success" if success else "Failure"}
    r = record(acct=acct, region=region, t=t, ui=ui, source="signin.amazonaws.com", name="ConsoleLogin",
               ip=ip, ua=rng.choice(UA_BROWSER), req=None, resp=resp, extra=extra, read_only=False,
               event_type="AwsConsoleSignIn", version=version, event_id=event_id,
               tls_host=endpoint("signin", region))
    if not success:
        # failed sign-ins carry an errorMessage (and no errorCode); keep CloudTrail's key order
        r = reorder_with(r, "userAgent", {"errorMessage": "Failed authentication"})
    return r


def reorder_with(r: dict, after_key: str, ins: dict) -> dict:
    out = {}
    for k, v in r.items():
        out[k] = v
        if k == after_key:
            out.update(ins)
    return out


def perm(proto, from_port, to_port, v4=(), v6=(), groups=(), desc=None):
    p = {"ipProtocol": proto}
    if from_port is not None:
        p["fromPort"], p["toPort"] = from_port, to_port
    p["groups"] = {"items": list(groups)} if groups else {}
    p["ipRanges"] = {"items": [dict({"cidrIp": c}, **({"description": desc} if desc else {})) for c in v4]} if v4 else {}
    p["ipv6Ranges"] = {"items": [{"cidrIpv6": c} for c in v6]} if v6 else {}
    p["prefixListIds"] = {}
    return p


def sg_ingress_req(group_id, perms):
    return {"groupId": group_id, "ipPermissions": {"items": perms}}


def sg_rule_item(acct, group_id, proto, fp, tp, v4=None, v6=None, egress=False, ref=None, desc=None):
    it = {"groupOwnerId": acct, "groupId": group_id, "securityGroupRuleId": "sgr-0" + hexs(16),
          "isEgress": egress, "ipProtocol": proto, "fromPort": fp, "toPort": tp}
    if v4:
        it["cidrIpv4"] = v4
    if v6:
        it["cidrIpv6"] = v6
    if ref:
        it["referencedGroupInfo"] = {"groupId": ref, "userId": acct}
    if desc:
        it["description"] = desc
    return it


def modify_sg_req(group_id, rules):
    """rules: list of inner SecurityGroupRule dicts; a single rule is logged as an object."""
    wrapped = [{"SecurityGroupRuleId": "sgr-0" + hexs(16), "SecurityGroupRule": r, "tag": i + 1}
               for i, r in enumerate(rules)]
    return {"ModifySecurityGroupRulesRequest": {
        "GroupId": group_id,
        "SecurityGroupRule": wrapped[0] if len(wrapped) == 1 else wrapped,
    }}


def modify_sg_resp():
    return {"ModifySecurityGroupRulesResponse": {"requestId": new_uuid(), "return": True,
                                                 "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/"}}


def root_identity(acct, *, console=False, key=None, invoked_by=None, mfa=True, t=None) -> dict:
    ui = {"type": "Root", "principalId": acct, "arn": f"arn:aws:iam::{acct}:root", "accountId": acct}
    if console:
        ui["accessKeyId"] = access_key("ASIA")
        ui["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {},
                                "attributes": {"creationDate": ts(t - dt.timedelta(minutes=rng.randint(3, 40))),
                                               "mfaAuthenticated": "true" if mfa else "false"}}
    elif key is not None:
        ui["accessKeyId"] = key
    if invoked_by:
        ui["invokedBy"] = invoked_by
    return ui


# --------------------------------------------------------------------------
# planted events.  Each group is (account, region, day index, [builders]); the
# builders of a group land in one log file in the given order.
# A builder is fn(t) -> record.
# --------------------------------------------------------------------------

def planted_groups():
    A, B = ACCT_A, ACCT_B
    PA, PB = PEOPLE[A], PEOPLE[B]
    alice, bob = PA["humans"]
    carol, dave = PB["humans"]
    root_ip_a, root_ip_b = "203.0.113.77", "198.51.100.23"
    G = []

    # ---------------- rule 1: root_account_usage ----------------
    def r1_cred_verification(t):  # negative: Root + AwsServiceEvent
        return record(acct=A, region="us-east-1", t=t,
                      ui={"type": "Root", "principalId": A, "arn": f"arn:aws:iam::{A}:root", "accountId": A,
                          "accessKeyId": ""},
                      source="signin.amazonaws.com", name="CredentialVerification", ip=root_ip_a,
                      ua=UA_BROWSER[1], req=None, resp=None,
                      extra={"RequestId": new_uuid(), "CredentialType": "PASSWORD"},
                      read_only=False, event_type="AwsServiceEvent", version="1.08",
                      event_id=planted_id(1, "b", 3),
                      after_flags={"serviceEventDetails": {"CredentialVerification": "Success"}})

    def r1_root_console_login(t):  # positive (rule 1 only: MFAUsed Yes)
        ui = {"type": "Root", "principalId": A, "arn": f"arn:aws:iam::{A}:root", "accountId": A,
              "accessKeyId": ""}
        r = console_login(A, "us-east-1", t, ui, root_ip_a, mfa_used="Yes", event_id=planted_id(1, "a", 1, also=[CIS[3]]))
        r["userAgent"] = UA_BROWSER[1]
        return r

    G.append((A, "us-east-1", 0, [r1_cred_verification, r1_root_console_login]))

    def r1_root_list_buckets(t):  # positive: root read from the console
        host = "s3.eu-west-1.amazonaws.com"
        return record(acct=B, region="eu-west-1", t=t, ui=root_identity(B, console=True, t=t),
                      source="s3.amazonaws.com", name="ListBuckets", ip=root_ip_b, ua="[S3Console/0.4]",
                      req={"Host": host}, resp=None, extra=s3_extra(), read_only=True,
                      request_id=s3_request_id(), event_id=planted_id(1, "a", 2, also=[CIS[3]]), tls_host=host,
                      console_session=True)

    G.append((B, "eu-west-1", 1, [r1_root_list_buckets]))

    def r1_root_create_access_key(t):  # positive: root write
        ak = access_key("AKIA")
        return record(acct=B, region="us-east-1", t=t, ui=root_identity(B, console=True, t=t),
                      source="iam.amazonaws.com", name="CreateAccessKey", ip=root_ip_b, ua="AWS Internal",
                      req=None, resp={"accessKey": {"accessKeyId": ak, "status": "Active",
                                                    "createDate": aws_date(t)}},
                      read_only=False, version="1.08", event_id=planted_id(1, "a", 3, also=[CIS[3]]),
                      tls_host="iam.amazonaws.com", console_session=True)

    G.append((B, "us-east-1", 2, [r1_root_create_access_key]))

    def r1_root_cli_describe(t):  # positive: root long-term access key from the CLI
        return record(acct=A, region="eu-west-1", t=t, ui=root_identity(A, key=access_key("AKIA")),
                      source="ec2.amazonaws.com", name="DescribeInstances", ip="192.0.2.199",
                      ua=UA_CLI[1].format(cmd="ec2.describe-instances"),
                      req={"instancesSet": {}, "filterSet": {}}, resp=None, read_only=True,
                      event_id=planted_id(1, "a", 4, also=[CIS[3]]), tls_host=endpoint("ec2", "eu-west-1"))

    G.append((A, "eu-west-1", 1, [r1_root_cli_describe]))

    def r1_root_invoked_by_support(t):  # negative: invokedBy present
        return record(acct=A, region="us-east-1", t=t,
                      ui=root_identity(A, invoked_by="support.amazonaws.com"),
                      source="iam.amazonaws.com", name="GetAccountSummary", ip="support.amazonaws.com",
                      ua="support.amazonaws.com", req=None, resp=None, read_only=True, version="1.08",
                      event_id=planted_id(1, "b", 1))

    G.append((A, "us-east-1", 1, [r1_root_invoked_by_support]))

    def r1_root_invoked_by_autoscaling(t):  # negative: invokedBy present
        return record(acct=B, region="eu-west-1", t=t,
                      ui=root_identity(B, invoked_by="autoscaling.amazonaws.com"),
                      source="ec2.amazonaws.com", name="DescribeInstanceStatus", ip="autoscaling.amazonaws.com",
                      ua="autoscaling.amazonaws.com",
                      req={"instancesSet": {"items": [{"instanceId": PB["instances"][0]}]}, "filterSet": {},
                           "includeAllInstances": True},
                      resp=None, read_only=True, event_id=planted_id(1, "b", 2))

    G.append((B, "eu-west-1", 0, [r1_root_invoked_by_autoscaling]))

    def r1_iam_user_named_root(t):  # negative: IAMUser whose name is "root"
        u = Principal("iamuser", B, "root")
        host = "s3.us-east-1.amazonaws.com"
        return record(acct=B, region="us-east-1", t=t, ui=u.identity(t), source="s3.amazonaws.com",
                      name="ListBuckets", ip="198.51.100.140", ua=UA_CLI[0].format(cmd="s3.ls"),
                      req={"Host": host}, resp=None, extra=s3_extra(), read_only=True,
                      request_id=s3_request_id(), event_id=planted_id(1, "b", 4), tls_host=host)

    G.append((B, "us-east-1", 0, [r1_iam_user_named_root]))

    # ---------------- rule 2: console_login_without_mfa ----------------
    def user_login_ui(p):
        ui = p.identity(DAYS[0])
        ui["accessKeyId"] = ""
        return ui

    G.append((A, "us-east-1", 0, [lambda t: console_login(
        A, "us-east-1", t, user_login_ui(alice), alice.home_ip, mfa_used="No", event_id=planted_id(2, "a", 1, also=[CIS[2]]))]))
    G.append((B, "eu-west-1", 2, [lambda t: console_login(
        B, "eu-west-1", t, user_login_ui(carol), carol.home_ip, mfa_used="No", event_id=planted_id(2, "a", 2, also=[CIS[2]]))]))
    G.append((A, "eu-west-1", 1, [lambda t: console_login(
        A, "eu-west-1", t, user_login_ui(bob), bob.home_ip, mfa_used="Yes", event_id=planted_id(2, "b", 1))]))
    G.append((B, "us-east-1", 0, [lambda t: console_login(
        B, "us-east-1", t, user_login_ui(dave), dave.home_ip, mfa_used="YES", event_id=planted_id(2, "b", 2))]))

    def r2_failed(t):  # negative: failed login without MFA
        return console_login(A, "us-east-1", t, user_login_ui(alice), "192.0.2.66", mfa_used="No", success=False,
                             event_id=planted_id(2, "b", 3, also=[CIS[6]]))

    G.append((A, "us-east-1", 2, [r2_failed]))

    def r2_saml(t):  # negative: SAML federation (MFA enforced at the IdP)
        role = Principal("role", B, "ADFS-Admins")
        ui = role.identity(t, session="jane.doe@example.com")
        ui["accessKeyId"] = ""
        ui["sessionContext"]["attributes"]["creationDate"] = ts(t)
        return console_login(B, "us-east-1", t, ui, "203.0.113.41", mfa_used="No",
                             saml=f"arn:aws:iam::{B}:saml-provider/ADFS", event_id=planted_id(2, "b", 4))

    G.append((B, "us-east-1", 1, [r2_saml]))

    def r2_sso(t):  # negative: IAM Identity Center permission-set role
        ps = "AWSReservedSSO_AdminAccess_3f9a1c2b7d4e5f60"
        role = Principal("role", A, ps, path="/aws-reserved/sso.amazonaws.com/eu-west-1/")
        ui = role.identity(t, session="jane.doe@example.com")
        ui["accessKeyId"] = ""
        return console_login(A, "eu-west-1", t, ui, "203.0.113.41", mfa_used="No", event_id=planted_id(2, "b", 5))

    G.append((A, "eu-west-1", 2, [r2_sso]))

    def r2_assumed_mfa(t):  # negative: federated/role session whose credentials were MFA-authenticated
        role = Principal("role", B, "BreakGlassAdmin")
        ui = role.identity(t, session="carol", mfa=True)
        ui["accessKeyId"] = ""
        return console_login(B, "eu-west-1", t, ui, carol.home_ip, mfa_used="No", event_id=planted_id(2, "b", 6))

    G.append((B, "eu-west-1", 1, [r2_assumed_mfa]))

    # ---------------- rule 3: kms_key_deletion ----------------
    def kms_call(acct, region, t, caller, name, req, resp, eid, key, err=None, console=True):
        ui = caller.identity(t, console=console, mfa=True) if caller.kind == "iamuser" else caller.identity(t)
        return record(acct=acct, region=region, t=t, ui=ui, source="kms.amazonaws.com", name=name,
                      ip=caller.home_ip, ua="AWS Internal" if console else rng.choice(UA_CLI).format(cmd="kms." + name.lower()),
                      req=req, resp=resp, read_only=False, error=err, event_id=eid,
                      resources=[{"accountId": acct, "type": "AWS::KMS::Key", "ARN": kms_arn(acct, region, key)}],
                      tls_host=endpoint("kms", region), console_session=console and caller.kind == "iamuser")

    kA_us, kA_eu = PA["kms_keys"]["us-east-1"][0], PA["kms_keys"]["eu-west-1"][1]
    kB_us, kB_eu = PB["kms_keys"]["us-east-1"][1], PB["kms_keys"]["eu-west-1"][0]

    G.append((A, "us-east-1", 0, [lambda t: kms_call(
        A, "us-east-1", t, alice, "DisableKeyRotation", {"keyId": kA_us}, None, planted_id(3, "b", 1), kA_us)]))

    def r3_denied(t):
        r = PB["readonly"]
        ui = r.identity(t, session="dave")
        karn = kms_arn(B, "eu-west-1", kB_eu)
        return record(acct=B, region="eu-west-1", t=t, ui=ui, source="kms.amazonaws.com",
                      name="ScheduleKeyDeletion", ip=dave.home_ip, ua=UA_CLI[0].format(cmd="kms.schedule-key-deletion"),
                      error=("AccessDenied", f"User: {ui['arn']} is not authorized to perform: kms:ScheduleKeyDeletion "
                                             f"on resource: {karn} because no identity-based policy allows the "
                                             f"kms:ScheduleKeyDeletion action"),
                      req=None, resp=None, read_only=False, event_id=planted_id(3, "b", 2, also=[CIS[1], CIS[7]]),
                      tls_host=endpoint("kms", "eu-west-1"))

    G.append((B, "eu-west-1", 0, [r3_denied]))

    def r3_schedule(t):
        karn = kms_arn(A, "eu-west-1", kA_eu)
        return kms_call(A, "eu-west-1", t, bob, "ScheduleKeyDeletion", {"keyId": kA_eu, "pendingWindowInDays": 7},
                        {"keyId": karn, "deletionDate": aws_date((t + dt.timedelta(days=8)).replace(hour=0, minute=0, second=0)),
                         "keyState": "PendingDeletion", "pendingWindowInDays": 7},
                        planted_id(3, "a", 1, also=[CIS[7]]), kA_eu)

    def r3_cancel(t):
        return kms_call(A, "eu-west-1", t, alice, "CancelKeyDeletion", {"keyId": kA_eu},
                        {"keyId": kms_arn(A, "eu-west-1", kA_eu)}, planted_id(3, "b", 4), kA_eu)

    G.append((A, "eu-west-1", 1, [r3_schedule, r3_cancel]))

    def r3_invalid_state(t):
        gone = PA["kms_keys"]["us-east-1"][1]
        karn = kms_arn(A, "us-east-1", gone)
        return kms_call(A, "us-east-1", t, PA["bot"], "ScheduleKeyDeletion",
                        {"keyId": gone, "pendingWindowInDays": 30}, None, planted_id(3, "b", 3, also=[CIS[7]]), gone,
                        err=("KMSInvalidStateException", f"{karn} is pending deletion."), console=False)

    G.append((A, "us-east-1", 2, [r3_invalid_state]))

    G.append((B, "us-east-1", 2, [
        lambda t: kms_call(B, "us-east-1", t, PB["bot"], "DisableKey", {"keyId": kB_us}, None,
                           planted_id(3, "a", 2, also=[CIS[7]]), kB_us, console=False),
        lambda t: kms_call(B, "us-east-1", t, carol, "EnableKey", {"keyId": kB_us}, None,
                           planted_id(3, "b", 5), kB_us),
    ]))

    def r3_service_delete(t):  # negative: the service-side DeleteKey at the end of a waiting period
        old = "0f0e0d0c-1b2a-4c3d-8e4f-5a6b7c8d9e0f"
        return record(acct=B, region="eu-west-1", t=t, ui={"accountId": B, "invokedBy": "kms.amazonaws.com"},
                      source="kms.amazonaws.com", name="DeleteKey", ip="kms.amazonaws.com", ua="kms.amazonaws.com",
                      req=None, resp=None, read_only=False, event_type="AwsServiceEvent",
                      event_id=planted_id(3, "b", 6),
                      resources=[{"accountId": B, "type": "AWS::KMS::Key", "ARN": kms_arn(B, "eu-west-1", old)}],
                      after_flags={"serviceEventDetails": {"keyId": old}})

    G.append((B, "eu-west-1", 2, [r3_service_delete]))

    # ---------------- rule 4: security_group_opened_to_world ----------------
    def ec2_write(acct, region, t, caller, name, req, resp, eid, err=None, console=False):
        if caller.kind == "iamuser":
            ui = caller.identity(t, console=console, mfa=True)
            ua = "AWS Internal" if console else UA_TF.format(api="ec2", ver="1.177.0")
        else:
            ui = caller.identity(t, session=caller.kw.get("session") or "deploy")
            ua = UA_GO.format(api="ec2", ver="1.177.0")
        return record(acct=acct, region=region, t=t, ui=ui, source="ec2.amazonaws.com", name=name,
                      ip=caller.home_ip, ua=ua, req=req, resp=None if err else resp, read_only=False,
                      error=err, event_id=eid, tls_host=endpoint("ec2", region),
                      console_session=console and caller.kind == "iamuser")

    sgA, sgB = PA["sgs"], PB["sgs"]

    def r4_ipv4_two_items(t):
        req = sg_ingress_req(sgA[0], [perm("tcp", 443, 443, v4=["10.0.0.0/16"]),
                                      perm("tcp", 22, 22, v4=["0.0.0.0/0"])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [
            sg_rule_item(A, sgA[0], "tcp", 443, 443, v4="10.0.0.0/16"),
            sg_rule_item(A, sgA[0], "tcp", 22, 22, v4="0.0.0.0/0")]}})
        return ec2_write(A, "us-east-1", t, bob, "AuthorizeSecurityGroupIngress", req, resp,
                         planted_id(4, "a", 1, also=[CIS[10]]), console=True)

    def r4_dup(t):
        req = sg_ingress_req(sgA[0], [perm("tcp", 22, 22, v4=["0.0.0.0/0"])])
        return ec2_write(A, "us-east-1", t, bob, "AuthorizeSecurityGroupIngress", req, None, planted_id(4, "b", 5, also=[CIS[10]]),
                         err=("Client.InvalidPermission.Duplicate",
                              'the specified rule "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW" already exists'),
                         console=True)

    def r4_revoke(t):
        req = sg_ingress_req(sgA[0], [perm("tcp", 22, 22, v4=["0.0.0.0/0"])])
        return ec2_write(A, "us-east-1", t, alice, "RevokeSecurityGroupIngress", req,
                         ec2_resp({"revokedSecurityGroupRuleSet": {"items": [
                             {"groupId": sgA[0], "securityGroupRuleId": "sgr-0" + hexs(16), "isEgress": False,
                              "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}]}}),
                         planted_id(4, "b", 2, also=[CIS[10]]), console=True)

    G.append((A, "us-east-1", 0, [r4_ipv4_two_items, r4_dup, r4_revoke]))

    def r4_ipv6(t):
        req = sg_ingress_req(sgB[1], [perm("tcp", 3389, 3389, v6=["::/0"])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [sg_rule_item(B, sgB[1], "tcp", 3389, 3389, v6="::/0")]}})
        return ec2_write(B, "eu-west-1", t, PB["bot"], "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "a", 2, also=[CIS[10]]))

    G.append((B, "eu-west-1", 1, [r4_ipv6]))

    def r4_legacy(t):
        req = {"groupId": sgA[2], "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"}
        resp = ec2_resp({"securityGroupRuleSet": {"items": [sg_rule_item(A, sgA[2], "tcp", 22, 22, v4="0.0.0.0/0")]}})
        ops = PA["lambda_role"]
        return ec2_write(A, "eu-west-1", t, ops, "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "a", 3, also=[CIS[10]]))

    G.append((A, "eu-west-1", 2, [r4_legacy]))

    def r4_modify_v4(t):
        req = modify_sg_req(sgB[2], [{"Description": "ssh", "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                      "CidrIpv4": "0.0.0.0/0"}])
        return ec2_write(B, "us-east-1", t, dave, "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "a", 4, also=[CIS[10]]), console=True)

    G.append((B, "us-east-1", 1, [r4_modify_v4]))

    def r4_modify_list(t):
        req = modify_sg_req(sgA[1], [
            {"Description": "app", "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "CidrIpv4": "10.1.0.0/16"},
            {"Description": "temp debug", "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"},
        ])
        return ec2_write(A, "eu-west-1", t, alice, "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "a", 5, also=[CIS[10]]), console=True)

    G.append((A, "eu-west-1", 1, [r4_modify_list]))

    def r4_modify_v6(t):
        req = modify_sg_req(sgB[3], [{"Description": "", "IpProtocol": "-1", "FromPort": -1, "ToPort": -1,
                                      "CidrIpv6": "::/0"}])
        return ec2_write(B, "us-east-1", t, PB["bot"], "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "a", 6, also=[CIS[10]]))

    G.append((B, "us-east-1", 2, [r4_modify_v6]))

    def r4_egress(t):
        req = sg_ingress_req(sgA[3], [perm("-1", None, None, v4=["0.0.0.0/0"])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [
            sg_rule_item(A, sgA[3], "-1", -1, -1, v4="0.0.0.0/0", egress=True)]}})
        return ec2_write(A, "us-east-1", t, PA["bot"], "AuthorizeSecurityGroupEgress", req, resp, planted_id(4, "b", 1, also=[CIS[10]]))

    G.append((A, "us-east-1", 1, [r4_egress]))

    def r4_sg_ref(t):
        req = sg_ingress_req(sgB[0], [perm("tcp", 5432, 5432, groups=[
            {"groupId": sgB[1], "userId": B, "description": "allow 0.0.0.0/0 later"}])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [
            sg_rule_item(B, sgB[0], "tcp", 5432, 5432, ref=sgB[1], desc="allow 0.0.0.0/0 later")]}})
        return ec2_write(B, "eu-west-1", t, PB["bot"], "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "b", 3, also=[CIS[10]]))

    G.append((B, "eu-west-1", 0, [r4_sg_ref]))

    def r4_private(t):
        req = sg_ingress_req(sgB[2], [perm("tcp", 443, 443, v4=["10.0.0.0/8"])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [sg_rule_item(B, sgB[2], "tcp", 443, 443, v4="10.0.0.0/8")]}})
        return ec2_write(B, "us-east-1", t, carol, "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "b", 4, also=[CIS[10]]),
                         console=True)

    G.append((B, "us-east-1", 2, [r4_private]))

    def r4_modify_private(t):
        req = modify_sg_req(sgA[1], [{"Description": "app", "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                                      "CidrIpv4": "10.0.0.0/16"}])
        return ec2_write(A, "eu-west-1", t, PA["bot"], "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "b", 6, also=[CIS[10]]))

    G.append((A, "eu-west-1", 0, [r4_modify_private]))

    # ================ CIS AWS Foundations monitoring controls 4.1-4.15 ================
    # Each control gets planted positives (c15<CC>a..) and tricky negatives (c15<CC>b..).
    # Cases that also fire other rules say so with also=; the mandatory cases above
    # that fire CIS rules (root usage, SG changes, ...) declare it the same way.

    def call(acct, region, t, caller, source, name, req, resp, eid, *, err=None, console=False, read_only=False,
             session=None, ua=None, ip=None, extra=None, management=True, host_service=None):
        if caller.kind == "iamuser":
            ui = caller.identity(t, console=console, mfa=True)
            ua = ua or ("AWS Internal" if console else rng.choice(UA_CLI).format(cmd=name.lower()))
        else:
            ui = caller.identity(t, session=session or caller.kw.get("session") or "deploy")
            ua = ua or UA_BOTO
        svc = host_service or source.split(".")[0]
        return record(acct=acct, region=region, t=t, ui=ui, source=source, name=name,
                      ip=ip or caller.home_ip, ua=ua, req=req, resp=None if err else resp,
                      read_only=read_only, error=err, event_id=eid, extra=extra, management=management,
                      tls_host=endpoint(svc, region), console_session=console and caller.kind == "iamuser")

    ops_a, ops_b = PA["lambda_role"], PB["lambda_role"]
    bot_a, bot_b = PA["bot"], PB["bot"]
    aud_a, aud_b = PA["auditor"], PB["auditor"]
    trail_a = f"arn:aws:cloudtrail:us-east-1:{A}:trail/{TRAIL_NAME}"
    trail_b = f"arn:aws:cloudtrail:us-east-1:{B}:trail/{TRAIL_NAME}"
    vpc_a, vpc_b = "vpc-0" + hexs(16), "vpc-0" + hexs(16)

    # ---- 4.1 unauthorized API calls
    G.append((A, "us-east-1", 1, [lambda t: call(
        A, "us-east-1", t, ops_a, "ec2.amazonaws.com", "RunInstances",
        {"instancesSet": {"items": [{"imageId": "ami-0" + hexs(16), "minCount": 1, "maxCount": 1}]},
         "instanceType": "c5.4xlarge"}, None, cis_id(1, "a", 1), session="nightly-report", ip=private_ip(),
        err=("Client.UnauthorizedOperation", "You are not authorized to perform this operation. "
                                             "Encoded authorization failure message: " + rid(48, ALNUM)))]))

    def c1501a02(t):  # a read-only session tries to mint keys for the deploy user
        ui_arn = f"arn:aws:sts::{B}:assumed-role/ReadOnlyRole/dave"
        return call(B, "us-east-1", t, PB["readonly"], "iam.amazonaws.com", "CreateAccessKey",
                    {"userName": "terraform"}, None, cis_id(1, "a", 2), session="dave", ip="192.0.2.45",
                    ua=UA_CLI[0].format(cmd="iam.create-access-key"),
                    err=("AccessDenied", f"User: {ui_arn} is not authorized to perform: iam:CreateAccessKey on "
                                         f"resource: user terraform because no identity-based policy allows "
                                         f"the iam:CreateAccessKey action"))

    G.append((B, "us-east-1", 2, [c1501a02]))

    def c1501b01(t):  # the S3 console probes buckets with HeadBucket; refusals there are excluded
        bucket = PA["buckets"][2]
        host = f"{bucket}.s3.us-east-1.amazonaws.com"
        ui = alice.identity(t, console=True, mfa=True)
        return record(acct=A, region="us-east-1", t=t, ui=ui, source="s3.amazonaws.com", name="HeadBucket",
                      ip=alice.home_ip, ua="[S3Console/0.4]", req={"bucketName": bucket, "Host": host},
                      resp=None, extra=s3_extra(), read_only=True, error=("AccessDenied", "Access Denied"),
                      request_id=s3_request_id(), event_id=cis_id(1, "b", 1), tls_host=host, console_session=True,
                      resources=[{"accountId": A, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])

    G.append((A, "us-east-1", 0, [c1501b01]))

    def c1501b02(t):  # flow-log delivery refused by the bucket policy; excluded by sourceIPAddress
        bucket = f"acme-staging-flowlogs-{B}"
        key = f"AWSLogs/{B}/vpcflowlogs/eu-west-1/{t:%Y/%m/%d}/{B}_vpcflowlogs_eu-west-1_fl-0{hexs(16)}.log.gz"
        return record(acct=B, region="eu-west-1", t=t,
                      ui={"type": "AWSService", "invokedBy": "delivery.logs.amazonaws.com"},
                      source="s3.amazonaws.com", name="PutObject", ip="delivery.logs.amazonaws.com",
                      ua="delivery.logs.amazonaws.com", req={"bucketName": bucket, "key": key,
                                                            "Host": f"{bucket}.s3.eu-west-1.amazonaws.com"},
                      resp=None, extra=s3_extra(), read_only=False, version="1.08", management=False,
                      error=("AccessDenied", "Access Denied"), request_id=s3_request_id(),
                      event_id=cis_id(1, "b", 2),
                      resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                                 {"accountId": B, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])

    G.append((B, "eu-west-1", 1, [c1501b02]))

    G.append((A, "eu-west-1", 2, [lambda t: call(  # a dry run is refused only in name
        A, "eu-west-1", t, bot_a, "ec2.amazonaws.com", "RunInstances",
        {"instancesSet": {"items": [{"imageId": "ami-0" + hexs(16), "minCount": 1, "maxCount": 1}]},
         "instanceType": "t3.micro", "dryRun": True}, None, cis_id(1, "b", 3),
        ua=UA_TF.format(api="ec2", ver="1.177.0"),
        err=("Client.DryRunOperation", "Request would have succeeded, but DryRun flag is set."))]))

    # ---- 4.2 console sign-in without MFA (IAM users only)
    G.append((B, "us-east-1", 1, [lambda t: console_login(
        B, "us-east-1", t, user_login_ui(dave), "203.0.113.188", mfa_used="No",
        event_id=cis_id(2, "a", 1, also=[MANDATORY[2]]))]))

    def c1502b01(t):  # a custom identity broker's federated user: not an IAM user, so not 4.2
        ui = {"type": "FederatedUser", "principalId": f"{A}:ops-broker-jane",
              "arn": f"arn:aws:sts::{A}:federated-user/ops-broker-jane", "accountId": A, "accessKeyId": "",
              "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": bot_a.principal_id,
                                                   "arn": f"arn:aws:iam::{A}:user/{bot_a.name}", "accountId": A,
                                                   "userName": bot_a.name},
                                 "webIdFederationData": {},
                                 "attributes": {"creationDate": ts(t), "mfaAuthenticated": "false"}}}
        return console_login(A, "us-east-1", t, ui, "198.51.100.77", mfa_used="No",
                             event_id=cis_id(2, "b", 1, also=[MANDATORY[2]]))

    G.append((A, "us-east-1", 1, [c1502b01]))

    # ---- 4.3 root usage
    G.append((A, "us-east-1", 2, [lambda t: record(
        acct=A, region="us-east-1", t=t, ui=root_identity(A, console=True, t=t), source="iam.amazonaws.com",
        name="ListUsers", ip=root_ip_a, ua="AWS Internal", req={"maxItems": 1000}, resp=None, read_only=True,
        version="1.08", event_id=cis_id(3, "a", 1, also=[MANDATORY[1]]), tls_host="iam.amazonaws.com",
        console_session=True)]))

    def c1503b01(t):  # a principal of another account assumes a role here: type AWSAccount, not Root
        role_arn = f"arn:aws:iam::{A}:role/PartnerAudit"
        return record(acct=A, region="us-east-1", t=t,
                      ui={"type": "AWSAccount", "principalId": "AIDA" + rid(17), "accountId": B},
                      source="sts.amazonaws.com", name="AssumeRole", ip="198.51.100.30",
                      ua=UA_GO.format(api="sts", ver="1.30.6"),
                      req={"roleArn": role_arn, "roleSessionName": "partner-audit", "durationSeconds": 3600},
                      resp={"credentials": {"accessKeyId": access_key("ASIA"),
                                            "expiration": aws_date(t + dt.timedelta(hours=1))}},
                      read_only=True, version="1.08", event_id=cis_id(3, "b", 1),
                      resources=[{"accountId": A, "type": "AWS::IAM::Role", "ARN": role_arn}],
                      tls_host=endpoint("sts", "us-east-1"))

    G.append((A, "us-east-1", 0, [c1503b01]))

    # ---- 4.4 IAM policy changes
    G.append((B, "us-east-1", 0, [lambda t: call(
        B, "us-east-1", t, bot_b, "iam.amazonaws.com", "AttachRolePolicy",
        {"roleName": "app-instance-role", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, None,
        cis_id(4, "a", 1), ua=UA_TF.format(api="iam", ver="1.37.3"))]))
    G.append((A, "us-east-1", 1, [lambda t: call(
        A, "us-east-1", t, alice, "iam.amazonaws.com", "PutUserPolicy",
        {"userName": "bob", "policyName": "tmp-debug",
         "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'},
        None, cis_id(4, "a", 2), console=True)]))
    G.append((A, "us-east-1", 2, [lambda t: call(  # an SCP: Organizations' CreatePolicy, not IAM's (4.15 instead)
        A, "us-east-1", t, alice, "organizations.amazonaws.com", "CreatePolicy",
        {"name": "deny-leave-organization", "description": "", "type": "SERVICE_CONTROL_POLICY",
         "content": '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"organizations:LeaveOrganization","Resource":"*"}]}'},
        {"policy": {"policySummary": {"id": "p-" + hexs(8), "type": "SERVICE_CONTROL_POLICY"}}},
        cis_id(4, "b", 1, also=[CIS[15]]), console=True)]))
    G.append((A, "eu-west-1", 0, [lambda t: call(  # AWS IoT's CreatePolicy
        A, "eu-west-1", t, ops_a, "iot.amazonaws.com", "CreatePolicy",
        {"policyName": "thumbnailer-publish",
         "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]}'},
        {"policyName": "thumbnailer-publish", "policyVersionId": "1"}, cis_id(4, "b", 2), session="thumbnailer",
        ip=private_ip())]))

    # ---- 4.5 CloudTrail configuration changes
    G.append((A, "us-east-1", 2, [
        lambda t: call(A, "us-east-1", t, bob, "cloudtrail.amazonaws.com", "StopLogging", {"name": trail_a}, None,
                       cis_id(5, "a", 1), console=True),
        lambda t: call(A, "us-east-1", t, alice, "cloudtrail.amazonaws.com", "StartLogging", {"name": trail_a}, None,
                       cis_id(5, "a", 2), console=True),
    ]))
    G.append((B, "eu-west-1", 1, [lambda t: call(  # selectors that drop management events (not in the CIS list)
        B, "eu-west-1", t, bot_b, "cloudtrail.amazonaws.com", "PutEventSelectors",
        {"trailName": trail_b, "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": False,
                                                    "dataResources": [], "excludeManagementEventSources": []}]},
        {"trailARN": trail_b}, cis_id(5, "a", 3), ua=UA_TF.format(api="cloudtrail", ver="1.43.2"))]))
    G.append((B, "us-east-1", 0, [lambda t: call(  # tagging a trail changes no logging
        B, "us-east-1", t, carol, "cloudtrail.amazonaws.com", "AddTags",
        {"resourceId": trail_b, "tagsList": [{"key": "owner", "value": "security"}]}, None, cis_id(5, "b", 1),
        console=True)]))

    # ---- 4.6 console authentication failures
    def c1506_failures(t, n):
        if n == 0:
            return console_login(B, "eu-west-1", t, user_login_ui(carol), "192.0.2.88", mfa_used="No", success=False,
                                 event_id=cis_id(6, "a", 1))
        if n == 1:  # unknown user name: CloudTrail hides it and logs another message
            ui = {"type": "IAMUser", "principalId": "", "accountId": B, "accessKeyId": "",
                  "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}
            r = console_login(B, "eu-west-1", t, ui, "192.0.2.88", mfa_used="No", success=False,
                              event_id=cis_id(6, "a", 2))
            r["errorMessage"] = "No username found in supplied account"
            return r
        return console_login(B, "eu-west-1", t, user_login_ui(carol), carol.home_ip, mfa_used="Yes",
                             event_id=cis_id(6, "b", 1))

    G.append((B, "eu-west-1", 0, [lambda t: c1506_failures(t, 0), lambda t: c1506_failures(t, 1),
                                  lambda t: c1506_failures(t, 2)]))

    # ---- 4.7 KMS key disabled or scheduled for deletion
    kB_eu2 = PB["kms_keys"]["eu-west-1"][1]
    G.append((B, "eu-west-1", 0, [
        lambda t: kms_call(B, "eu-west-1", t, PB["bot"], "DisableKey", {"keyId": kB_eu2}, None,
                           cis_id(7, "a", 1, also=[MANDATORY[3]]), kB_eu2, console=False),
        lambda t: kms_call(B, "eu-west-1", t, carol, "PutKeyPolicy",  # a key policy change, not a state change
                           {"keyId": kB_eu2, "policyName": "default", "bypassPolicyLockoutSafetyCheck": False},
                           None, cis_id(7, "b", 1), kB_eu2),
    ]))

    # ---- 4.8 S3 bucket policy changes
    def c1508a01(t):
        bucket = PA["buckets"][1]
        host = f"{bucket}.s3.us-east-1.amazonaws.com"
        pol = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",'
               f'"Resource":"arn:aws:s3:::{bucket}/*"}}]}}')
        return record(acct=A, region="us-east-1", t=t, ui=alice.identity(t), source="s3.amazonaws.com",
                      name="PutBucketPolicy", ip=alice.home_ip, ua=UA_CLI[1].format(cmd="s3api.put-bucket-policy"),
                      req={"bucketName": bucket, "Host": host, "policy": pol}, resp=None, extra=s3_extra(),
                      read_only=False, request_id=s3_request_id(), event_id=cis_id(8, "a", 1), tls_host=host,
                      resources=[{"accountId": A, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])

    def c1508a02(t):
        bucket = PB["buckets"][2]
        host = f"{bucket}.s3.eu-west-1.amazonaws.com"
        return record(acct=B, region="eu-west-1", t=t, ui=bot_b.identity(t), source="s3.amazonaws.com",
                      name="PutBucketLifecycle", ip=bot_b.home_ip, ua=UA_TF.format(api="s3", ver="1.64.0"),
                      req={"bucketName": bucket, "Host": host, "lifecycle": "",
                           "LifecycleConfiguration": {"Rule": {"ID": "expire-all", "Status": "Enabled",
                                                               "Filter": {"Prefix": ""},
                                                               "Expiration": {"Days": 1}}}},
                      resp=None, extra=s3_extra(), read_only=False, request_id=s3_request_id(),
                      event_id=cis_id(8, "a", 2), tls_host=host,
                      resources=[{"accountId": B, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])

    def c1508b01(t):  # an object ACL is a data event, not a bucket policy
        bucket, key = PA["buckets"][1], "reports/2026/10/daily.csv"
        host = f"{bucket}.s3.eu-west-1.amazonaws.com"
        return record(acct=A, region="eu-west-1", t=t, ui=alice.identity(t), source="s3.amazonaws.com",
                      name="PutObjectAcl", ip=alice.home_ip, ua=UA_CLI[1].format(cmd="s3api.put-object-acl"),
                      req={"bucketName": bucket, "Host": host, "key": key, "acl": "", "x-amz-acl": "public-read"},
                      resp=None, extra=s3_extra(), read_only=False, version="1.08", management=False,
                      request_id=s3_request_id(), event_id=cis_id(8, "b", 1), tls_host=host,
                      resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                                 {"accountId": A, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])

    def c1508b02(t):
        bucket = PB["buckets"][0]
        host = f"{bucket}.s3.us-east-1.amazonaws.com"
        return record(acct=B, region="us-east-1", t=t, ui=aud_b.identity(t), source="s3.amazonaws.com",
                      name="GetBucketPolicy", ip=public_ip(), ua=UA_GO.format(api="s3", ver="1.64.0"),
                      req={"bucketName": bucket, "Host": host, "policy": ""}, resp=None, extra=s3_extra(),
                      read_only=True, request_id=s3_request_id(), event_id=cis_id(8, "b", 2), tls_host=host)

    G.append((A, "us-east-1", 0, [c1508a01]))
    G.append((B, "eu-west-1", 2, [c1508a02]))
    G.append((A, "eu-west-1", 1, [c1508b01]))
    G.append((B, "us-east-1", 1, [c1508b02]))

    # ---- 4.9 AWS Config changes
    G.append((B, "us-east-1", 2, [
        lambda t: call(B, "us-east-1", t, dave, "config.amazonaws.com", "StopConfigurationRecorder",
                       {"configurationRecorderName": "default"}, None, cis_id(9, "a", 1)),
        lambda t: call(B, "us-east-1", t, dave, "config.amazonaws.com", "DeleteDeliveryChannel",
                       {"deliveryChannelName": "default"}, None, cis_id(9, "a", 2)),
    ]))
    G.append((A, "eu-west-1", 0, [
        lambda t: call(A, "eu-west-1", t, alice, "config.amazonaws.com", "StartConfigurationRecorder",
                       {"configurationRecorderName": "default"}, None, cis_id(9, "b", 1), console=True),
        lambda t: call(A, "eu-west-1", t, bot_a, "config.amazonaws.com", "PutConfigRule",
                       {"configRule": {"configRuleName": "s3-bucket-public-read-prohibited",
                                       "source": {"owner": "AWS",
                                                  "sourceIdentifier": "S3_BUCKET_PUBLIC_READ_PROHIBITED"}}},
                       None, cis_id(9, "b", 2), ua=UA_TF.format(api="config", ver="1.50.1")),
    ]))

    # ---- 4.10 security group changes (the mandatory SG cases above count too)
    new_sg = "sg-0" + hexs(16)
    G.append((A, "eu-west-1", 1, [
        lambda t: ec2_write(A, "eu-west-1", t, bot_a, "CreateSecurityGroup",
                            {"groupName": "reporting-db", "groupDescription": "reporting database", "vpcId": vpc_a},
                            ec2_resp({"groupId": new_sg}), cis_id(10, "a", 1)),
        lambda t: ec2_write(A, "eu-west-1", t, bot_a, "AuthorizeSecurityGroupIngress",
                            sg_ingress_req(new_sg, [perm("tcp", 5432, 5432, v4=["10.20.0.0/16"])]),
                            ec2_resp({"securityGroupRuleSet": {"items": [
                                sg_rule_item(A, new_sg, "tcp", 5432, 5432, v4="10.20.0.0/16")]}}),
                            cis_id(10, "a", 2)),
    ]))
    G.append((B, "us-east-1", 0, [lambda t: ec2_write(  # moving an instance to other groups changes no rule
        B, "us-east-1", t, carol, "ModifyInstanceAttribute",
        {"instanceId": PB["instances"][1], "groupSet": {"items": [{"groupId": sgB[0]}, {"groupId": sgB[2]}]}},
        ec2_resp(), cis_id(10, "b", 1), console=True)]))
    G.append((A, "us-east-1", 2, [lambda t: ec2_write(  # a description-only edit, not in the CIS list
        A, "us-east-1", t, bot_a, "UpdateSecurityGroupRuleDescriptionsIngress",
        {"groupId": sgA[3], "ipPermissions": {"items": [perm("tcp", 443, 443, v4=["10.0.0.0/16"], desc="internal ALB")]}},
        ec2_resp(), cis_id(10, "b", 2))]))

    # ---- 4.11 NACL changes
    acl_b = "acl-0" + hexs(16)
    G.append((B, "eu-west-1", 2, [lambda t: ec2_write(
        B, "eu-west-1", t, dave, "CreateNetworkAclEntry",
        {"networkAclId": acl_b, "ruleNumber": 90, "egress": False, "ruleAction": "allow", "icmpTypeCode": {},
         "portRange": {"from": 22, "to": 22}, "aclProtocol": "6", "cidrBlock": "0.0.0.0/0"},
        ec2_resp(), cis_id(11, "a", 1), console=True)]))
    G.append((A, "us-east-1", 0, [lambda t: call(
        A, "us-east-1", t, aud_a, "ec2.amazonaws.com", "DescribeNetworkAcls",
        {"networkAclIdSet": {}, "filterSet": {}}, None, cis_id(11, "b", 1), read_only=True,
        ua=UA_GO.format(api="ec2", ver="1.177.0"), ip=public_ip())]))

    # ---- 4.12 network gateways and 4.13 route tables: an internet path for a private VPC
    igw_a, rtb_a = "igw-0" + hexs(16), "rtb-0" + hexs(16)
    G.append((A, "eu-west-1", 2, [
        lambda t: ec2_write(A, "eu-west-1", t, bob, "CreateInternetGateway", {},
                            ec2_resp({"internetGateway": {"internetGatewayId": igw_a, "attachmentSet": {}}}),
                            cis_id(12, "a", 1), console=True),
        lambda t: ec2_write(A, "eu-west-1", t, bob, "AttachInternetGateway",
                            {"internetGatewayId": igw_a, "vpcId": vpc_a}, ec2_resp(), cis_id(12, "a", 2),
                            console=True),
        lambda t: ec2_write(A, "eu-west-1", t, bob, "CreateRoute",
                            {"routeTableId": rtb_a, "destinationCidrBlock": "0.0.0.0/0", "gatewayId": igw_a},
                            ec2_resp(), cis_id(13, "a", 1), console=True),
    ]))
    G.append((B, "us-east-1", 1, [lambda t: ec2_write(  # NAT gateways are not in the CIS list
        B, "us-east-1", t, bot_b, "CreateNatGateway",
        {"CreateNatGatewayRequest": {"SubnetId": "subnet-0" + hexs(16), "AllocationId": "eipalloc-0" + hexs(16),
                                     "ConnectivityType": "public"}},
        {"CreateNatGatewayResponse": {"natGateway": {"natGatewayId": "nat-0" + hexs(16), "state": "pending"}}},
        cis_id(12, "b", 1))]))
    G.append((B, "eu-west-1", 0, [lambda t: ec2_write(
        B, "eu-west-1", t, bot_b, "ReplaceRouteTableAssociation",
        {"associationId": "rtbassoc-0" + hexs(16), "routeTableId": "rtb-0" + hexs(16)},
        ec2_resp({"newAssociationId": "rtbassoc-0" + hexs(16)}), cis_id(13, "a", 2))]))
    G.append((B, "eu-west-1", 1, [lambda t: call(  # API Gateway v2 routes are HTTP paths
        B, "eu-west-1", t, bot_b, "apigateway.amazonaws.com", "CreateRoute",
        {"apiId": hexs(10), "routeKey": "GET /orders", "target": "integrations/" + hexs(7)},
        {"routeId": hexs(7), "routeKey": "GET /orders"}, cis_id(13, "b", 1),
        ua=UA_TF.format(api="apigatewayv2", ver="1.23.4"))]))

    # ---- 4.14 VPC changes: a peering between the two accounts
    pcx = "pcx-0" + hexs(16)
    G.append((A, "us-east-1", 1, [lambda t: ec2_write(
        A, "us-east-1", t, bob, "CreateVpcPeeringConnection",
        {"vpcId": vpc_a, "peerVpcId": vpc_b, "peerOwnerId": B},
        ec2_resp({"vpcPeeringConnection": {"vpcPeeringConnectionId": pcx}}), cis_id(14, "a", 1), console=True)]))
    G.append((B, "us-east-1", 1, [lambda t: ec2_write(
        B, "us-east-1", t, dave, "AcceptVpcPeeringConnection", {"vpcPeeringConnectionId": pcx},
        ec2_resp({"vpcPeeringConnection": {"vpcPeeringConnectionId": pcx}}), cis_id(14, "a", 2), console=True)]))
    G.append((A, "eu-west-1", 0, [lambda t: ec2_write(  # VPC endpoints are not in the CIS list
        A, "eu-west-1", t, bot_a, "CreateVpcEndpoint",
        {"CreateVpcEndpointRequest": {"VpcId": vpc_a, "ServiceName": "com.amazonaws.eu-west-1.s3",
                                      "VpcEndpointType": "Gateway"}},
        {"CreateVpcEndpointResponse": {"vpcEndpoint": {"vpcEndpointId": "vpce-0" + hexs(16)}}},
        cis_id(14, "b", 1))]))

    # ---- 4.15 Organizations changes (plus 4b01, the SCP created above)
    G.append((B, "us-east-1", 2, [lambda t: call(
        B, "us-east-1", t, carol, "organizations.amazonaws.com", "LeaveOrganization", None, None,
        cis_id(15, "a", 1), console=True)]))
    G.append((A, "us-east-1", 0, [lambda t: call(
        A, "us-east-1", t, alice, "organizations.amazonaws.com", "DetachPolicy",
        {"policyId": "p-" + hexs(8), "targetId": "ou-" + hexs(4) + "-" + hexs(8)}, None, cis_id(15, "a", 2),
        console=True)]))
    G.append((A, "eu-west-1", 1, [lambda t: call(  # AWS IoT's AttachPolicy
        A, "eu-west-1", t, ops_a, "iot.amazonaws.com", "AttachPolicy",
        {"policyName": "thumbnailer-publish", "target": f"arn:aws:iot:eu-west-1:{A}:cert/{hexs(64)}"}, None,
        cis_id(15, "b", 1), session="thumbnailer", ip=private_ip())]))
    G.append((A, "us-east-1", 1, [lambda t: call(
        A, "us-east-1", t, aud_a, "organizations.amazonaws.com", "ListAccounts", None, None, cis_id(15, "b", 2),
        read_only=True, ua=UA_GO.format(api="organizations", ver="1.34.2"), ip=public_ip())]))

    # ---------------- misc: one pre-2014 style record (eventVersion 1.01, no eventType) ----------------
    def old_style(t):
        return {
            "eventVersion": "1.01",
            "userIdentity": {"type": "IAMUser", "principalId": alice.principal_id,
                             "arn": f"arn:aws:iam::{A}:user/alice", "accountId": A,
                             "accessKeyId": alice.key, "userName": "alice"},
            "eventTime": ts(t),
            "eventSource": "ec2.amazonaws.com",
            "eventName": "DescribeInstances",
            "awsRegion": "us-east-1",
            "sourceIPAddress": alice.home_ip,
            "userAgent": "aws-cli/1.3.23 Python/2.7.6 Linux/2.6.18-164.el5",
            "requestParameters": {"instancesSet": {}, "filterSet": {}},
            "responseElements": None,
            "requestID": new_uuid(),
            "eventID": planted_id(0, "b", 1),
        }

    G.append((A, "us-east-1", 0, [old_style]))
    return G


# --------------------------------------------------------------------------
# reference rule evaluator (exactly the semantics in README.md)
# --------------------------------------------------------------------------

def _get(d, *path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _items(x):
    """CloudTrail's {"items": [...]} wrapper -> list (anything else -> [])."""
    it = _get(x, "items")
    return it if isinstance(it, list) else []


def _ends0(v) -> bool:
    return isinstance(v, str) and v.endswith("/0")


def evaluate_mandatory(r: dict) -> list[str]:
    hits = []
    ui = r.get("userIdentity") or {}
    # 1. root_account_usage
    if ui.get("type") == "Root" and "invokedBy" not in ui and r.get("eventType") != "AwsServiceEvent":
        hits.append("root_account_usage")
    # 2. console_login_without_mfa
    aed = r.get("additionalEventData") or {}
    mfa = aed.get("MFAUsed")
    if (r.get("eventName") == "ConsoleLogin"
            and _get(r, "responseElements", "ConsoleLogin") == "Success"
            and not (isinstance(mfa, str) and mfa.lower() == "yes")
            and aed.get("SamlProviderArn") is None
            and "AWSReservedSSO_" not in (ui.get("arn") or "")
            and _get(ui, "sessionContext", "attributes", "mfaAuthenticated") != "true"):
        hits.append("console_login_without_mfa")
    # 3. kms_key_deletion
    if (r.get("eventSource") == "kms.amazonaws.com"
            and r.get("eventName") in ("ScheduleKeyDeletion", "DisableKey")
            and "errorCode" not in r):
        hits.append("kms_key_deletion")
    # 4. security_group_opened_to_world
    if r.get("eventSource") == "ec2.amazonaws.com" and "errorCode" not in r:
        rp = r.get("requestParameters") or {}
        world = False
        if r.get("eventName") == "AuthorizeSecurityGroupIngress":
            for p in _items(rp.get("ipPermissions")):
                world |= any(_ends0(x.get("cidrIp")) for x in _items(p.get("ipRanges")))
                world |= any(_ends0(x.get("cidrIpv6")) for x in _items(p.get("ipv6Ranges")))
            world |= _ends0(rp.get("cidrIp"))
        elif r.get("eventName") == "ModifySecurityGroupRules":
            outer = _get(rp, "ModifySecurityGroupRulesRequest", "SecurityGroupRule")
            for o in (outer if isinstance(outer, list) else [outer]):
                inner = _get(o, "SecurityGroupRule") or {}
                world |= _ends0(inner.get("CidrIpv4")) or _ends0(inner.get("CidrIpv6"))
        if world:
            hits.append("security_group_opened_to_world")
    return hits



# The CIS AWS Foundations monitoring controls, from the benchmark's metric
# filters (v1.4-v5 text), with the corrections that rules/cis/ documents:
# 4.1 groups the errorCode terms before the exclusions, 4.2 uses the IAM-user
# Success form, 4.4 and 4.13 require the IAM and EC2 event sources (as
# Security Hub does), 4.5 adds PutEventSelectors, 4.6 also counts a Failure
# outcome, 4.9 adds DeleteConfigurationRecorder, 4.10 adds
# ModifySecurityGroupRules (as v5 does).  Failed calls count wherever the
# metric filters count them (all but 4.2, which asks for a successful sign-in).
CIS_NAMES = {
    4: ("iam.amazonaws.com", {"DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
                              "PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
                              "DeletePolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy",
                              "DetachUserPolicy", "AttachGroupPolicy", "DetachGroupPolicy"}),
    5: (None, {"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging", "PutEventSelectors"}),
    7: ("kms.amazonaws.com", {"DisableKey", "ScheduleKeyDeletion"}),
    8: ("s3.amazonaws.com", {"PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle",
                             "PutBucketReplication", "DeleteBucketPolicy", "DeleteBucketCors",
                             "DeleteBucketLifecycle", "DeleteBucketReplication"}),
    9: ("config.amazonaws.com", {"StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel",
                                 "PutConfigurationRecorder", "DeleteConfigurationRecorder"}),
    10: (None, {"AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
                "RevokeSecurityGroupEgress", "CreateSecurityGroup", "DeleteSecurityGroup", "ModifySecurityGroupRules"}),
    11: (None, {"CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
                "ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation"}),
    12: (None, {"CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway", "CreateInternetGateway",
                "DeleteInternetGateway", "DetachInternetGateway"}),
    13: ("ec2.amazonaws.com", {"CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation",
                               "DeleteRouteTable", "DeleteRoute", "DisassociateRouteTable"}),
    14: (None, {"CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
                "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
                "AttachClassicLinkVpc", "DetachClassicLinkVpc", "DisableVpcClassicLink", "EnableVpcClassicLink"}),
    15: ("organizations.amazonaws.com", {"AcceptHandshake", "AttachPolicy", "CreateAccount",
                                         "CreateOrganizationalUnit", "CreatePolicy", "DeclineHandshake",
                                         "DeleteOrganization", "DeleteOrganizationalUnit", "DeletePolicy",
                                         "DetachPolicy", "DisablePolicyType", "EnablePolicyType",
                                         "InviteAccountToOrganization", "LeaveOrganization", "MoveAccount",
                                         "RemoveAccountFromOrganization", "UpdatePolicy", "UpdateOrganizationalUnit"}),
}


def evaluate_cis(r: dict) -> list[str]:
    hits = []
    ui = r.get("userIdentity") or {}
    name, source = r.get("eventName"), r.get("eventSource")
    err = r.get("errorCode")
    # 4.1 refused calls, except log deliveries and the console's HeadBucket probes
    if (isinstance(err, str) and (err.endswith("UnauthorizedOperation") or err.startswith("AccessDenied"))
            and r.get("sourceIPAddress") != "delivery.logs.amazonaws.com" and name != "HeadBucket"):
        hits.append(CIS[1])
    # 4.2 successful IAM-user console sign-in whose MFAUsed is not "Yes"
    mfa = (r.get("additionalEventData") or {}).get("MFAUsed")
    if (name == "ConsoleLogin" and ui.get("type") == "IAMUser"
            and _get(r, "responseElements", "ConsoleLogin") == "Success"
            and not (isinstance(mfa, str) and mfa.lower() == "yes")):
        hits.append(CIS[2])
    # 4.3 root, not on a service's behalf, not a service event
    if ui.get("type") == "Root" and "invokedBy" not in ui and r.get("eventType") != "AwsServiceEvent":
        hits.append(CIS[3])
    # 4.6 failed console sign-in
    if name == "ConsoleLogin" and (r.get("errorMessage") == "Failed authentication"
                                   or _get(r, "responseElements", "ConsoleLogin") == "Failure"):
        hits.append(CIS[6])
    # 4.4, 4.5, 4.7-4.15: an event name of the control's list (from its event source, where it names one)
    for control, (src, names) in CIS_NAMES.items():
        if name in names and (src is None or source == src):
            hits.append(CIS[control])
    return hits


def evaluate(r: dict) -> list[str]:
    """Every rule of the shipped set that fires on `r`."""
    return evaluate_mandatory(r) + evaluate_cis(r)


# --------------------------------------------------------------------------
# correlation scenarios (rules/correlations/)
#
# Planted eventIDs of the form ccc<SS><K><NN>-0000-4000-8000-000000000000 are
# the events of correlation scenario SS (01-03), K "a" for a scenario that
# must make its correlation fire, "b" for a near miss that must not.  Every
# one of them declares the single-event rules it fires (CIS 4.1, 4.4, 4.6)
# with also=, and the event that completes a window declares the correlation
# alert too (completes=): a correlation alert is keyed by the eventID of the
# event that completed its window.
# --------------------------------------------------------------------------

CORRELATION_RULES = {1: "failed_console_logins_from_one_ip", 2: "access_denied_burst_by_principal",
                     3: "access_key_then_admin_policy"}
# (correlation rule, eventID of the completing event), declared by the scenarios.
CORR_EXPECT: list[tuple[str, str]] = []


def corr_id(scenario: int, kind: str, n: int, also=(), completes: bool = False) -> str:
    assert kind in ("a", "b") and scenario in CORRELATION_RULES and (kind == "a" or not completes)
    eid = _declare(f"ccc{scenario:02d}{kind}{n:02d}-0000-4000-8000-000000000000", None, "b", also)
    if completes:
        CORR_EXPECT.append((CORRELATION_RULES[scenario], eid))
    return eid


def correlation_scenarios(files: list[dict]) -> list[dict]:
    """Plants the correlation scenarios into the scheduled `files` (each record
    lands in the file whose interval holds its eventTime) and returns them."""
    A, B = ACCT_A, ACCT_B
    alice, bob = PEOPLE[A]["humans"]
    carol, dave = PEOPLE[B]["humans"]
    out = []

    def stream(acct, region, day):
        return sorted((f for f in files if f["acct"] == acct and f["region"] == region and f["day"] == day),
                      key=lambda f: f["start"])

    def place(acct, region, day, rec):
        t = dt.datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        hit = [f for f in stream(acct, region, day) if f["start"] <= t < f["end"]]
        assert len(hit) == 1, (rec["eventID"], rec["eventTime"])
        hit[0]["records"].append(rec)
        out.append(rec)

    def long_file(acct, region, day, seconds):
        cands = [f for f in stream(acct, region, day) if (f["end"] - f["start"]).total_seconds() >= seconds]
        assert cands, (acct, region, day, seconds)
        return rng.choice(cands)

    def login_ui(acct, user):
        if user is None:  # an unknown user name: CloudTrail hides what was typed
            return {"type": "IAMUser", "principalId": "", "accountId": acct, "accessKeyId": "",
                    "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}
        ui = user.identity(DAYS[0])
        ui["accessKeyId"] = ""
        return ui

    def failed_login(acct, region, t, user, ip, eid):
        r = console_login(acct, region, t, login_ui(acct, user), ip, mfa_used="No", success=False, event_id=eid)
        if user is None:
            r["errorMessage"] = "No username found in supplied account"
        return r

    def iam_call(acct, t, p, name, req, resp, eid, ua):
        return record(acct=acct, region="us-east-1", t=t, ui=p.identity(t), source="iam.amazonaws.com", name=name,
                      ip=p.home_ip, ua=ua, req=req, resp=resp, read_only=False, version="1.08", event_id=eid,
                      tls_host="iam.amazonaws.com")

    # ---- 1. failed_console_logins_from_one_ip: 6 failures from one IP in 200 s, across two delivery files
    #      (the 5th completes the window; the 6th falls in the quiet period after the alert)
    s = stream(A, "us-east-1", 0)
    k = len(s) // 2
    edge = s[k]["end"]  # == s[k + 1]["start"]
    tried = [alice, bob, None, alice, bob, None]
    for n, (off, user) in enumerate(zip([-100, -70, -40, 10, 50, 100], tried), start=1):
        place(A, "us-east-1", 0, failed_login(A, "us-east-1", edge + dt.timedelta(seconds=off), user,
                                              "198.51.100.201",
                                              corr_id(1, "a", n, also=[CIS[6]], completes=n == 5)))
    # near miss: 4 failures from one IP within 3 minutes
    f = long_file(B, "eu-west-1", 2, 300)
    t = f["start"] + dt.timedelta(seconds=30)
    for n, user in enumerate([carol, dave, carol, None], start=1):
        place(B, "eu-west-1", 2, failed_login(B, "eu-west-1", t, user, "192.0.2.140",
                                              corr_id(1, "b", n, also=[CIS[6]])))
        t += dt.timedelta(seconds=55)

    # ---- 2. access_denied_burst_by_principal: a leaked key of an IAM user probes what it may do:
    #      22 refusals in 5.25 minutes, one delivery file (the 20th completes the window)
    svc = Principal("iamuser", B, "svc-reporting", ip="203.0.113.199")
    probe_ua = "Boto3/1.34.162 md/Botocore#1.34.162 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.162"
    denied = "AccessDenied"
    unauthorized = "Client.UnauthorizedOperation"
    probes = [
        ("iam", "ListUsers", denied), ("iam", "ListRoles", denied), ("iam", "GetAccountAuthorizationDetails", denied),
        ("ec2", "DescribeInstances", unauthorized), ("s3", "ListBuckets", denied),
        ("secretsmanager", "ListSecrets", "AccessDeniedException"), ("ec2", "DescribeSecurityGroups", unauthorized),
        ("lambda", "ListFunctions20150331", "AccessDeniedException"), ("kms", "ListKeys", "AccessDeniedException"),
        ("dynamodb", "ListTables", "AccessDeniedException"), ("rds", "DescribeDBInstances", denied),
        ("ssm", "DescribeParameters", "AccessDeniedException"), ("iam", "ListAccessKeys", denied),
        ("ec2", "DescribeVpcs", unauthorized), ("sns", "ListTopics", "AuthorizationError"),
        ("sqs", "ListQueues", "AccessDenied"), ("ec2", "DescribeSnapshots", unauthorized),
        ("iam", "CreateUser", denied), ("ec2", "RunInstances", unauthorized), ("iam", "ListPolicies", denied),
        ("organizations", "DescribeOrganization", "AccessDeniedException"), ("ec2", "DescribeImages", unauthorized),
        ("iam", "AttachUserPolicy", denied),
    ]
    # SNS's AuthorizationError is a refusal in SNS's own words: not counted by either rule.
    f = long_file(B, "us-east-1", 1, 420)
    t = f["start"] + dt.timedelta(seconds=25)
    n_denied = 0
    for n, (svc_name, name, code) in enumerate(probes, start=1):
        counts = code.startswith("AccessDenied") or code.endswith("UnauthorizedOperation")
        n_denied += counts
        region = "us-east-1"
        req = {"userName": "svc-reporting"} if name in ("ListAccessKeys",) else \
            {"userName": "backup-admin"} if name == "CreateUser" else \
            {"userName": "svc-reporting", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"} \
            if name == "AttachUserPolicy" else None
        also = [CIS[1]] if counts else []
        if name == "AttachUserPolicy":
            also.append(CIS[4])  # refused, but CIS 4.4 counts attempts too
        rec = record(acct=B, region=region, t=t, ui=svc.identity(t), source=f"{svc_name}.amazonaws.com", name=name,
                     ip=svc.home_ip, ua=probe_ua, req=req, resp=None, read_only=name.startswith(("List", "Describe", "Get")),
                     error=(code, f"User: arn:aws:iam::{B}:user/svc-reporting is not authorized to perform: "
                                  f"{svc_name}:{name} because no identity-based policy allows the action"),
                     event_id=corr_id(2, "a", n, also=also, completes=counts and n_denied == 20),
                     tls_host=endpoint(svc_name, region))
        place(B, "us-east-1", 1, rec)
        t += dt.timedelta(seconds=14)
    assert n_denied == 22
    # near miss: a deployment user with missing permissions, 19 refusals over 9 minutes
    bot = PEOPLE[A]["bot"]
    tf_calls = [("ec2", "CreateTags", unauthorized), ("iam", "GetRole", denied),
                ("lambda", "GetFunction20150331v2", "AccessDeniedException"),
                ("ec2", "DescribeLaunchTemplates", unauthorized), ("logs", "CreateLogGroup", "AccessDeniedException"),
                ("ssm", "GetParameter", "AccessDeniedException")]
    s = stream(A, "eu-west-1", 1)
    t = s[2]["start"] + dt.timedelta(seconds=40)
    for n in range(1, 20):
        svc_name, name, code = tf_calls[(n - 1) % len(tf_calls)]
        rec = record(acct=A, region="eu-west-1", t=t, ui=bot.identity(t), source=f"{svc_name}.amazonaws.com",
                     name=name, ip=bot.home_ip, ua=UA_TF.format(api=svc_name, ver="1.30.0"), req=None, resp=None,
                     read_only=name.startswith(("Get", "Describe")),
                     error=(code, "You are not authorized to perform this operation."),
                     event_id=corr_id(2, "b", n, also=[CIS[1]]), tls_host=endpoint(svc_name, "eu-west-1"))
        place(A, "eu-west-1", 1, rec)
        t += dt.timedelta(seconds=30)

    # ---- 3. access_key_then_admin_policy: bob mints a key for ci-deployer, then makes it all-powerful
    #      5 minutes later (one delivery file; the AttachUserPolicy completes the sequence)
    cli = UA_CLI[1]
    f = long_file(A, "us-east-1", 2, 380)
    t = f["start"] + dt.timedelta(seconds=20)
    place(A, "us-east-1", 2, iam_call(
        A, t, bob, "CreateAccessKey", {"userName": "ci-deployer"},
        {"accessKey": {"accessKeyId": access_key("AKIA"), "status": "Active", "userName": "ci-deployer",
                       "createDate": aws_date(t)}},
        corr_id(3, "a", 1), cli.format(cmd="iam.create-access-key")))
    t += dt.timedelta(minutes=5)
    place(A, "us-east-1", 2, iam_call(
        A, t, bob, "AttachUserPolicy",
        {"userName": "ci-deployer", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, None,
        corr_id(3, "a", 2, also=[CIS[4]], completes=True), cli.format(cmd="iam.attach-user-policy")))
    # near miss: the same sequence by dave, but the policy 20 minutes after the key
    s = stream(B, "us-east-1", 2)
    t = s[0]["start"] + dt.timedelta(seconds=60)
    place(B, "us-east-1", 2, iam_call(
        B, t, dave, "CreateAccessKey", {"userName": "terraform"},
        {"accessKey": {"accessKeyId": access_key("AKIA"), "status": "Active", "userName": "terraform",
                       "createDate": aws_date(t)}},
        corr_id(3, "b", 1), cli.format(cmd="iam.create-access-key")))
    t += dt.timedelta(minutes=20)
    place(B, "us-east-1", 2, iam_call(
        B, t, dave, "AttachUserPolicy",
        {"userName": "terraform", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, None,
        corr_id(3, "b", 2, also=[CIS[4]]), cli.format(cmd="iam.attach-user-policy")))
    return out


# --------------------------------------------------------------------------
# reference evaluation of the correlations
#
# Written from the semantics documented in src/rules/correlation.rs and the
# rule texts in rules/correlations/, not by running trailwatch:
#   * every record, in the order `scan` commits them (sorted file paths,
#     records in file order), that matches a base rule of a correlation is
#     one event of the group named by the group-by fields (a missing field
#     is an empty value);
#   * windows are `timespan` long in event time (both ends inclusive); an
#     event older than the group's newest event minus timespan minus the
#     lateness (900 s) is late and not used, and a group keeps only the
#     events inside that horizon (at most 256);
#   * when an event arrives, the windows that contain it, earliest start
#     first, are checked over their unconsumed events: event_count counts
#     them, temporal counts the distinct base rules, temporal_ordered the
#     base rules matched in the listed order; the first window whose count
#     meets the condition fires, keyed by the arriving event, and its events
#     are consumed;
#   * after a fire, events of the group up to the window's start plus the
#     timespan are absorbed (consumed on arrival).
# Base rules referenced by a correlation raise no alert of their own.
# --------------------------------------------------------------------------

def _ieq(v, s: str) -> bool:
    return isinstance(v, str) and v.lower() == s.lower()


def _iin(v, names) -> bool:
    return isinstance(v, str) and v.lower() in {n.lower() for n in names}


def _field(r: dict, path: str) -> str:
    v = r
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    if v is None or isinstance(v, (dict, list)):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def base_console_login_failure(r):
    return (_ieq(r.get("eventSource"), "signin.amazonaws.com") and _ieq(r.get("eventName"), "ConsoleLogin")
            and _ieq(_get(r, "responseElements", "ConsoleLogin"), "Failure"))


def base_api_call_denied(r):
    e = r.get("errorCode")
    return isinstance(e, str) and (e.lower().startswith("accessdenied") or e.lower().endswith("unauthorizedoperation"))


def base_access_key_for_another_user(r):
    target = _get(r, "requestParameters", "userName")
    return (_ieq(r.get("eventSource"), "iam.amazonaws.com") and _ieq(r.get("eventName"), "CreateAccessKey")
            and target is not None and target != _get(r, "userIdentity", "userName") and "errorCode" not in r)


def base_admin_policy_attached(r):
    arn = _get(r, "requestParameters", "policyArn")
    return (_ieq(r.get("eventSource"), "iam.amazonaws.com")
            and _iin(r.get("eventName"), ["AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"])
            and isinstance(arn, str) and arn.lower().endswith(":policy/administratoraccess") and "errorCode" not in r)


def _source_and_names(source, names):
    return lambda r: _ieq(r.get("eventSource"), source) and _iin(r.get("eventName"), names)


# (name, kind, base rules, group-by, timespan seconds, condition): rules/correlations/ and its sigmahq/ translations
CORRELATIONS = [
    ("failed_console_logins_from_one_ip", "event_count", [base_console_login_failure], ["sourceIPAddress"],
     300, lambda n: n >= 5),
    ("access_denied_burst_by_principal", "event_count", [base_api_call_denied], ["userIdentity.arn"],
     600, lambda n: n >= 20),
    ("access_key_then_admin_policy", "temporal_ordered",
     [base_access_key_for_another_user, base_admin_policy_attached], ["userIdentity.arn"], 900, lambda n: n >= 2),
    ("aws_ec2_download_userdata", "event_count",
     [lambda r: _source_and_names("ec2.amazonaws.com", ["DescribeInstanceAttribute"])(r)
      and _ieq(_get(r, "requestParameters", "attribute"), "userData")], ["userIdentity.arn"], 1800, lambda n: n > 10),
    ("aws_enum_backup", "event_count",
     [_source_and_names("ec2.amazonaws.com", ["GetPasswordData", "GetEbsEncryptionByDefault", "GetEbsDefaultKmsKeyId",
                                              "GetBucketReplication", "DescribeVolumes", "DescribeVolumesModifications",
                                              "DescribeSnapshotAttribute", "DescribeSnapshotTierStatus",
                                              "DescribeImages"])],
     ["userIdentity.arn"], 600, lambda n: n > 5),
    ("aws_enum_listing", "event_count",
     [lambda r: isinstance(r.get("eventName"), str) and r["eventName"].lower().startswith("list")],
     ["userIdentity.arn"], 600, lambda n: n > 50),
    ("aws_enum_network", "event_count",
     [_source_and_names("ec2.amazonaws.com", ["DescribeCarrierGateways", "DescribeVpcEndpointConnectionNotifications",
                                              "DescribeTransitGatewayMulticastDomains", "DescribeClientVpnRoutes",
                                              "DescribeDhcpOptions", "GetTransitGatewayRouteTableAssociations"])],
     ["userIdentity.arn"], 600, lambda n: n > 5),
    ("aws_enum_storage", "event_count",
     [_source_and_names("s3.amazonaws.com", ["ListBuckets", "GetBucketCors", "GetBucketInventoryConfiguration",
                                             "GetBucketPublicAccessBlock", "GetBucketMetricsConfiguration",
                                             "GetBucketPolicy", "GetBucketTagging"])],
     ["userIdentity.arn"], 600, lambda n: n > 5),
    ("aws_lambda_function_created_or_invoked", "temporal",
     [lambda r: _ieq(r.get("eventSource"), "lambda.amazonaws.com")
      and isinstance(r.get("eventName"), str) and r["eventName"].lower().startswith("createfunction"),
      _source_and_names("lambda.amazonaws.com", ["Invoke"])], ["userIdentity.arn"], 1800, lambda n: n >= 2),
    ("aws_macic_evasion", "event_count",
     [lambda r: _iin(r.get("eventName"), ["ArchiveFindings", "CreateFindingsFilter", "DeleteMember",
                                          "DisassociateFromMasterAccount", "DisassociateMember", "DisableMacie",
                                          "DisableOrganizationAdminAccount", "UpdateFindingsFilter",
                                          "UpdateMacieSession", "UpdateMemberSession", "UpdateClassificationJob"])],
     ["sourceIPAddress"], 600, lambda n: n > 5),
    ("aws_ses_messaging_enabled", "temporal",
     [_source_and_names("ses.amazonaws.com", ["UpdateAccountSendingEnabled"]),
      _source_and_names("ses.amazonaws.com", ["VerifyEmailIdentity"])], ["recipientAccountId"], 300, lambda n: n >= 2),
]
LATENESS_S = 900
MAX_EVENTS_PER_GROUP = 256


def shipped_correlation_names() -> set[str]:
    """Names of the correlation rules in rules/correlations/ (a document with a
    top-level `correlation:` key), to keep CORRELATIONS complete."""
    names = set()
    for p in (OUT.parent / "rules" / "correlations").rglob("*.yml"):
        for doc in p.read_text().split("\n---"):
            if "\ncorrelation:" in "\n" + doc:
                names.add(next(l.split(":", 1)[1].strip() for l in doc.splitlines() if l.startswith("name:")))
    return names


def correlate(records) -> list[tuple[str, str]]:
    """(correlation, eventID of the completing event) for every window that
    fires over `records`, given in listing order."""
    fired = []
    groups = [{} for _ in CORRELATIONS]
    for r in records:
        t = dt.datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
        for ci, (name, kind, bases, group_by, span, holds) in enumerate(CORRELATIONS):
            for pos, base in enumerate(bases):
                if not base(r):
                    continue
                key = tuple(_field(r, f) for f in group_by)
                g = groups[ci].setdefault(key, {"ev": [], "max_t": t, "quiet": None})
                ev = g["ev"]  # [time, eventID, base position, consumed], sorted by time (stable)
                if any(e[1] == r["eventID"] for e in ev) or t < g["max_t"] - span - LATENESS_S:
                    if not ev:
                        del groups[ci][key]
                    continue
                at = sum(1 for e in ev if e[0] <= t)
                ev.insert(at, [t, r["eventID"], pos, g["quiet"] is not None and t <= g["quiet"]])
                g["max_t"] = max(g["max_t"], t)
                for start in sorted({e[0] for e in ev if not e[3] and t - span <= e[0] <= t}):
                    live = [e for e in ev if not e[3] and start <= e[0] <= start + span]
                    if kind == "event_count":
                        n = len(live)
                    elif kind == "temporal":
                        n = len({e[2] for e in live})
                    else:  # temporal_ordered: the longest prefix of the base rules matched in time order
                        n = 0
                        for e in live:
                            n += e[2] == n
                    if holds(n):
                        for e in live:
                            e[3] = True
                        g["quiet"] = live[0][0] + span
                        fired.append((name, r["eventID"]))
                        break
                g["ev"] = [e for e in ev if e[0] >= g["max_t"] - span - LATENESS_S][-MAX_EVENTS_PER_GROUP:]
                if not g["ev"]:
                    del groups[ci][key]
    return fired


def assert_order_free(records, triggers) -> None:
    """What `correlate` predicts must not hang on the listing order (the
    daemon commits in SQS's order): outside the groups of the planted
    positives, no group holds a timespan whose events meet its condition in
    any order; and each planted positive's events lie within one timespan,
    so whatever order they arrive in, exactly one alert fires (the first
    fire's quiet period covers the rest)."""
    by_group = {}
    for r in records:
        t = dt.datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
        for ci, (name, kind, bases, group_by, span, holds) in enumerate(CORRELATIONS):
            for pos, base in enumerate(bases):
                if base(r):
                    key = (ci, tuple(_field(r, f) for f in group_by))
                    by_group.setdefault(key, []).append((t, pos, r["eventID"]))
    positive = {}
    for (ci, key), evs in by_group.items():
        name, kind, _, _, span, holds = CORRELATIONS[ci]
        evs.sort()
        if any((name, e[2]) in triggers for e in evs):
            assert evs[-1][0] - evs[0][0] <= span, (name, key)
            positive[name] = positive.get(name, 0) + 1
            continue
        for s, _, _ in evs:
            live = [e for e in evs if s <= e[0] <= s + span]
            if kind == "event_count":
                n = len(live)
            elif kind == "temporal":
                n = len({e[1] for e in live})
            else:
                n = 0
                for e in live:
                    n += e[1] == n
            assert not holds(n), (name, key, s)
    assert positive == {name: 1 for name, _ in triggers}, positive


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def gz_bytes(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(payload)
    return buf.getvalue()


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def main() -> None:
    if LOG_ROOT.exists():
        shutil.rmtree(LOG_ROOT)

    # 1. file schedule: per account/region/day an active window with a file every 5-15 min
    files = []  # dicts: acct, region, day, start, end, records
    for di, day in enumerate(DAYS):
        for acct in ACCOUNTS:
            for region in REGIONS:
                t = dt.datetime.combine(day, dt.time(rng.randint(6, 14), rng.randint(0, 59)))
                for _ in range(rng.randint(8, 10)):
                    end = t + dt.timedelta(minutes=rng.randint(5, 15), seconds=rng.randint(0, 59))
                    files.append({"acct": acct, "region": region, "day": di, "start": t, "end": end,
                                  "records": []})
                    t = end

    # 2. background records
    gens_all = [g for g, _ in BACKGROUND]
    weights_all = [w for _, w in BACKGROUND]
    gens_eu = [g for g, _ in BACKGROUND if g is not ev_iam]
    weights_eu = [w for g, w in BACKGROUND if g is not ev_iam]
    for f in files:
        gens, weights = (gens_all, weights_all) if f["region"] == "us-east-1" else (gens_eu, weights_eu)
        span = int((f["end"] - f["start"]).total_seconds()) - 60
        for _ in range(rng.randint(20, 45)):
            t = f["start"] + dt.timedelta(seconds=rng.randint(0, span))
            f["records"].append(rng.choices(gens, weights)[0](f["acct"], f["region"], t))

    # 3. planted records
    planted = []
    for acct, region, di, builders in planted_groups():
        cands = [f for f in files if f["acct"] == acct and f["region"] == region and f["day"] == di]
        f = rng.choice(cands)
        span = int((f["end"] - f["start"]).total_seconds()) - 90
        t = f["start"] + dt.timedelta(seconds=rng.randint(0, span - 20 * len(builders)))
        for b in builders:
            rec = b(t)
            assert rec["eventID"] in EXPECT, rec["eventID"]
            assert rec["awsRegion"] == region and rec.get("recipientAccountId", acct) == acct
            f["records"].append(rec)
            planted.append(rec)
            t += dt.timedelta(seconds=rng.randint(4, 20))

    # 3b. correlation scenarios, drawn from a generator of their own so that
    # adding them left every other record, time and file name as it was
    main_state = rng.getstate()
    rng.seed(SEED + 1)
    planted.extend(correlation_scenarios(files))
    rng.setstate(main_state)

    # 4. write log files
    written = []
    for f in files:
        f["records"].sort(key=lambda r: r["eventTime"])
        stamp = f["end"] + dt.timedelta(minutes=rng.randint(1, 4))
        acct, region = f["acct"], f["region"]
        d = LOG_ROOT / acct / "CloudTrail" / region / stamp.strftime("%Y/%m/%d")
        name = f"{acct}_CloudTrail_{region}_{stamp.strftime('%Y%m%dT%H%MZ')}_{rid(16, ALNUM)}.json.gz"
        raw = compact({"Records": f["records"]})
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(gz_bytes(raw))
        f["path"], f["raw"], f["stamp"] = d / name, raw, stamp
        written.append(f)

    # 5. one digest file (account A, us-east-1, first day, covering one hour of deliveries)
    streamA = [f for f in written if f["acct"] == ACCT_A and f["region"] == "us-east-1" and f["day"] == 0]
    d_start = streamA[0]["stamp"].replace(minute=0, second=0) + dt.timedelta(hours=1)
    d_end = d_start + dt.timedelta(hours=1)
    in_digest = [f for f in streamA if d_start <= f["stamp"] < d_end]
    assert in_digest, "digest window has no log files"
    rel = lambda p: p.relative_to(OUT).as_posix()
    prev_key = (f"AWSLogs/{ACCT_A}/CloudTrail-Digest/us-east-1/{d_start:%Y/%m/%d}/"
                f"{ACCT_A}_CloudTrail-Digest_us-east-1_{TRAIL_NAME}_us-east-1_{d_start:%Y%m%dT%H%M%SZ}.json.gz")
    digest_dir = LOG_ROOT / ACCT_A / "CloudTrail-Digest" / "us-east-1" / d_end.strftime("%Y/%m/%d")
    digest_name = f"{ACCT_A}_CloudTrail-Digest_us-east-1_{TRAIL_NAME}_us-east-1_{d_end:%Y%m%dT%H%M%SZ}.json.gz"
    all_times = [r["eventTime"] for f in in_digest for r in f["records"]]
    digest = {
        "awsAccountId": ACCT_A,
        "digestStartTime": ts(d_start),
        "digestEndTime": ts(d_end),
        "digestS3Bucket": TRAIL_BUCKET,
        "digestS3Object": f"AWSLogs/{ACCT_A}/CloudTrail-Digest/us-east-1/{d_end:%Y/%m/%d}/{digest_name}",
        "digestPublicKeyFingerprint": hexs(32),
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": max(all_times),
        "oldestEventTime": min(all_times),
        "previousDigestS3Bucket": TRAIL_BUCKET,
        "previousDigestS3Object": prev_key,
        "previousDigestHashValue": hexs(64),
        "previousDigestHashAlgorithm": "SHA-256",
        "previousDigestSignature": hexs(512),
        "logFiles": [{
            "s3Bucket": TRAIL_BUCKET,
            "s3Object": rel(f["path"]),
            "hashValue": hashlib.sha256(f["raw"]).hexdigest(),
            "hashAlgorithm": "SHA-256",
            "newestEventTime": f["records"][-1]["eventTime"],
            "oldestEventTime": f["records"][0]["eventTime"],
        } for f in in_digest],
    }
    digest_dir.mkdir(parents=True, exist_ok=True)
    (digest_dir / digest_name).write_bytes(gz_bytes(compact(digest)))

    # 6. verify by re-reading everything from disk with the reference evaluator
    assert set(EXPECT) == {r["eventID"] for r in planted}
    for r in planted:
        fired = evaluate(r)
        assert len(fired) == len(set(fired)), fired
        assert set(fired) == EXPECT[r["eventID"]], (r["eventID"], sorted(fired), sorted(EXPECT[r["eventID"]]))
    expected = sorted([(rule, eid) for eid, rules in EXPECT.items() for rule in rules] + CORR_EXPECT)
    assert shipped_correlation_names() == {c[0] for c in CORRELATIONS}, shipped_correlation_names()
    got, ids, n_records, n_files, listing = [], set(), 0, 0, []
    for p in sorted(LOG_ROOT.rglob("*.json.gz")):
        doc = json.loads(gzip.decompress(p.read_bytes()))
        if "CloudTrail-Digest" in p.parts:
            assert "Records" not in doc and "logFiles" in doc
            continue
        n_files += 1
        for r in doc["Records"]:
            n_records += 1
            assert r["eventID"] not in ids, "duplicate eventID " + r["eventID"]
            ids.add(r["eventID"])
            got.extend((rule, r["eventID"]) for rule in evaluate(r))
            listing.append(r)
    got.extend(correlate(listing))
    assert_order_free(listing, set(CORR_EXPECT))
    got.sort()
    assert got == expected, f"background records match rules: {sorted(set(got) - set(expected))}"
    # every rule has a planted positive of its own, every CIS control a tricky negative of its own
    own = {eid[:6] for eid in EXPECT}
    assert all(f"feed{n}a" in own for n in MANDATORY), own
    assert all(f"c15{n:02d}a" in own and f"c15{n:02d}b" in own for n in CIS), own
    assert all(f"ccc{n:02d}a" in own and f"ccc{n:02d}b" in own for n in CORRELATION_RULES), own
    assert {rule for rule, _ in expected} == set(MANDATORY.values()) | set(CIS.values()) | set(
        CORRELATION_RULES.values())
    assert sum(1 for r in planted if "eventType" not in r) == 1

    with open(OUT / "expected-alerts.tsv", "w", newline="\n") as fh:
        fh.write("rule_name\tevent_id\n")
        for rule, eid in expected:
            fh.write(f"{rule}\t{eid}\n")

    per_rule = {}
    for rule, _ in expected:
        per_rule[rule] = per_rule.get(rule, 0) + 1
    pos = sum(1 for r in planted if r["eventID"][5] == "a")
    neg = len(planted) - pos
    size = sum(p.stat().st_size for p in LOG_ROOT.rglob("*") if p.is_file())
    print(f"log files: {n_files} (+1 digest file), records: {n_records}, bytes on disk: {size}")
    print(f"planted: {len(planted)} events ({pos} positives, {neg} tricky negatives), {len(expected)} alerts")
    for rule in list(MANDATORY.values()) + list(CIS.values()) + list(CORRELATION_RULES.values()):
        print(f"  {rule}: {per_rule[rule]} alerts")
    print(f"digest: {rel(digest_dir / digest_name)} ({len(in_digest)} log files)")


if __name__ == "__main__":
    main()
