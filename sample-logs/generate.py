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

Planted events (the cases the rules must and must not flag) have eventIDs of
the form  feed<R><K><NN>-0000-4000-8000-000000000000  where R is the rule
number (1-4, 0 = no rule), K is "a" for a positive (must alert) or "b" for a
tricky negative (must not alert), and NN is a counter.  Background events use
random uuid4 eventIDs.  Before writing expected-alerts.tsv the script re-reads
every file it wrote, evaluates the four rules with a small reference
implementation (see `evaluate` below) and asserts that exactly the planted
positives match.
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


def planted_id(rule: int, kind: str, n: int) -> str:
    assert kind in ("a", "b") and 0 <= rule <= 4
    return f"feed{rule}{kind}{n:02d}-0000-4000-8000-000000000000"


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
        err = ("Client.UnauthorizedOperation",
               f"You are not authorized to perform this operation. User: {ui['arn']} is not authorized "
               f"to perform: ec2:{name} because no identity-based policy allows the ec2:{name} action")
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
        err = ("AccessDenied", "Access Denied")
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
        err = ("AccessDenied",
               f"User: {ui['arn']} is not authorized to perform: iam:ListUsers on resource: "
               f"arn:aws:iam::{acct}:user/ because no identity-based policy allows the iam:ListUsers action")
    return record(acct=acct, region="us-east-1", t=t, ui=ui, source="iam.amazonaws.com", name=name,
                  ip=ip, ua=ua, req=req, resp=None, read_only=True, version="1.08", error=err,
                  tls_host=endpoint("iam", region))


def ev_console_login_mfa(acct, region, t):
    h = rng.choice(PEOPLE[acct]["humans"])
    ui = h.identity(t)
    ui["accessKeyId"] = ""
    return console_login(acct, region, t, ui, h.home_ip, mfa_used="Yes")


def ev_sg_private_ingress(acct, region, t):
    p = PEOPLE[acct]
    b = p["bot"]
    port = rng.choice([443, 5432, 6379])
    cidr = rng.choice(["10.0.0.0/16", "10.20.0.0/16", "172.16.0.0/12"])
    sg = rng.choice(p["sgs"])
    return record(acct=acct, region=region, t=t, ui=b.identity(t), source="ec2.amazonaws.com",
                  name="AuthorizeSecurityGroupIngress", ip=b.home_ip, ua=UA_TF.format(api="ec2", ver="1.177.0"),
                  req=sg_ingress_req(sg, [perm("tcp", port, port, v4=[cidr])]),
                  resp=ec2_resp({"securityGroupRuleSet": {"items": [sg_rule_item(acct, sg, "tcp", port, port, v4=cidr)]}}),
                  read_only=False, version="1.09", tls_host=endpoint("ec2", region))


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
    (ev_sg_private_ingress, 0.4),
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
        r = console_login(A, "us-east-1", t, ui, root_ip_a, mfa_used="Yes", event_id=planted_id(1, "a", 1))
        r["userAgent"] = UA_BROWSER[1]
        return r

    G.append((A, "us-east-1", 0, [r1_cred_verification, r1_root_console_login]))

    def r1_root_list_buckets(t):  # positive: root read from the console
        host = "s3.eu-west-1.amazonaws.com"
        return record(acct=B, region="eu-west-1", t=t, ui=root_identity(B, console=True, t=t),
                      source="s3.amazonaws.com", name="ListBuckets", ip=root_ip_b, ua="[S3Console/0.4]",
                      req={"Host": host}, resp=None, extra=s3_extra(), read_only=True,
                      request_id=s3_request_id(), event_id=planted_id(1, "a", 2), tls_host=host,
                      console_session=True)

    G.append((B, "eu-west-1", 1, [r1_root_list_buckets]))

    def r1_root_create_access_key(t):  # positive: root write
        ak = access_key("AKIA")
        return record(acct=B, region="us-east-1", t=t, ui=root_identity(B, console=True, t=t),
                      source="iam.amazonaws.com", name="CreateAccessKey", ip=root_ip_b, ua="AWS Internal",
                      req=None, resp={"accessKey": {"accessKeyId": ak, "status": "Active",
                                                    "createDate": aws_date(t)}},
                      read_only=False, version="1.08", event_id=planted_id(1, "a", 3),
                      tls_host="iam.amazonaws.com", console_session=True)

    G.append((B, "us-east-1", 2, [r1_root_create_access_key]))

    def r1_root_cli_describe(t):  # positive: root long-term access key from the CLI
        return record(acct=A, region="eu-west-1", t=t, ui=root_identity(A, key=access_key("AKIA")),
                      source="ec2.amazonaws.com", name="DescribeInstances", ip="192.0.2.199",
                      ua=UA_CLI[1].format(cmd="ec2.describe-instances"),
                      req={"instancesSet": {}, "filterSet": {}}, resp=None, read_only=True,
                      event_id=planted_id(1, "a", 4), tls_host=endpoint("ec2", "eu-west-1"))

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
        A, "us-east-1", t, user_login_ui(alice), alice.home_ip, mfa_used="No", event_id=planted_id(2, "a", 1))]))
    G.append((B, "eu-west-1", 2, [lambda t: console_login(
        B, "eu-west-1", t, user_login_ui(carol), carol.home_ip, mfa_used="No", event_id=planted_id(2, "a", 2))]))
    G.append((A, "eu-west-1", 1, [lambda t: console_login(
        A, "eu-west-1", t, user_login_ui(bob), bob.home_ip, mfa_used="Yes", event_id=planted_id(2, "b", 1))]))
    G.append((B, "us-east-1", 0, [lambda t: console_login(
        B, "us-east-1", t, user_login_ui(dave), dave.home_ip, mfa_used="YES", event_id=planted_id(2, "b", 2))]))

    def r2_failed(t):  # negative: failed login without MFA
        return console_login(A, "us-east-1", t, user_login_ui(alice), "192.0.2.66", mfa_used="No", success=False,
                             event_id=planted_id(2, "b", 3))

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
                      req=None, resp=None, read_only=False, event_id=planted_id(3, "b", 2),
                      tls_host=endpoint("kms", "eu-west-1"))

    G.append((B, "eu-west-1", 0, [r3_denied]))

    def r3_schedule(t):
        karn = kms_arn(A, "eu-west-1", kA_eu)
        return kms_call(A, "eu-west-1", t, bob, "ScheduleKeyDeletion", {"keyId": kA_eu, "pendingWindowInDays": 7},
                        {"keyId": karn, "deletionDate": aws_date((t + dt.timedelta(days=8)).replace(hour=0, minute=0, second=0)),
                         "keyState": "PendingDeletion", "pendingWindowInDays": 7},
                        planted_id(3, "a", 1), kA_eu)

    def r3_cancel(t):
        return kms_call(A, "eu-west-1", t, alice, "CancelKeyDeletion", {"keyId": kA_eu},
                        {"keyId": kms_arn(A, "eu-west-1", kA_eu)}, planted_id(3, "b", 4), kA_eu)

    G.append((A, "eu-west-1", 1, [r3_schedule, r3_cancel]))

    def r3_invalid_state(t):
        gone = PA["kms_keys"]["us-east-1"][1]
        karn = kms_arn(A, "us-east-1", gone)
        return kms_call(A, "us-east-1", t, PA["bot"], "ScheduleKeyDeletion",
                        {"keyId": gone, "pendingWindowInDays": 30}, None, planted_id(3, "b", 3), gone,
                        err=("KMSInvalidStateException", f"{karn} is pending deletion."), console=False)

    G.append((A, "us-east-1", 2, [r3_invalid_state]))

    G.append((B, "us-east-1", 2, [
        lambda t: kms_call(B, "us-east-1", t, PB["bot"], "DisableKey", {"keyId": kB_us}, None,
                           planted_id(3, "a", 2), kB_us, console=False),
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
                         planted_id(4, "a", 1), console=True)

    def r4_dup(t):
        req = sg_ingress_req(sgA[0], [perm("tcp", 22, 22, v4=["0.0.0.0/0"])])
        return ec2_write(A, "us-east-1", t, bob, "AuthorizeSecurityGroupIngress", req, None, planted_id(4, "b", 5),
                         err=("Client.InvalidPermission.Duplicate",
                              'the specified rule "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW" already exists'),
                         console=True)

    def r4_revoke(t):
        req = sg_ingress_req(sgA[0], [perm("tcp", 22, 22, v4=["0.0.0.0/0"])])
        return ec2_write(A, "us-east-1", t, alice, "RevokeSecurityGroupIngress", req,
                         ec2_resp({"revokedSecurityGroupRuleSet": {"items": [
                             {"groupId": sgA[0], "securityGroupRuleId": "sgr-0" + hexs(16), "isEgress": False,
                              "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}]}}),
                         planted_id(4, "b", 2), console=True)

    G.append((A, "us-east-1", 0, [r4_ipv4_two_items, r4_dup, r4_revoke]))

    def r4_ipv6(t):
        req = sg_ingress_req(sgB[1], [perm("tcp", 3389, 3389, v6=["::/0"])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [sg_rule_item(B, sgB[1], "tcp", 3389, 3389, v6="::/0")]}})
        return ec2_write(B, "eu-west-1", t, PB["bot"], "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "a", 2))

    G.append((B, "eu-west-1", 1, [r4_ipv6]))

    def r4_legacy(t):
        req = {"groupId": sgA[2], "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"}
        resp = ec2_resp({"securityGroupRuleSet": {"items": [sg_rule_item(A, sgA[2], "tcp", 22, 22, v4="0.0.0.0/0")]}})
        ops = PA["lambda_role"]
        return ec2_write(A, "eu-west-1", t, ops, "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "a", 3))

    G.append((A, "eu-west-1", 2, [r4_legacy]))

    def r4_modify_v4(t):
        req = modify_sg_req(sgB[2], [{"Description": "ssh", "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                      "CidrIpv4": "0.0.0.0/0"}])
        return ec2_write(B, "us-east-1", t, dave, "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "a", 4), console=True)

    G.append((B, "us-east-1", 1, [r4_modify_v4]))

    def r4_modify_list(t):
        req = modify_sg_req(sgA[1], [
            {"Description": "app", "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "CidrIpv4": "10.1.0.0/16"},
            {"Description": "temp debug", "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"},
        ])
        return ec2_write(A, "eu-west-1", t, alice, "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "a", 5), console=True)

    G.append((A, "eu-west-1", 1, [r4_modify_list]))

    def r4_modify_v6(t):
        req = modify_sg_req(sgB[3], [{"Description": "", "IpProtocol": "-1", "FromPort": -1, "ToPort": -1,
                                      "CidrIpv6": "::/0"}])
        return ec2_write(B, "us-east-1", t, PB["bot"], "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "a", 6))

    G.append((B, "us-east-1", 2, [r4_modify_v6]))

    def r4_egress(t):
        req = sg_ingress_req(sgA[3], [perm("-1", None, None, v4=["0.0.0.0/0"])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [
            sg_rule_item(A, sgA[3], "-1", -1, -1, v4="0.0.0.0/0", egress=True)]}})
        return ec2_write(A, "us-east-1", t, PA["bot"], "AuthorizeSecurityGroupEgress", req, resp, planted_id(4, "b", 1))

    G.append((A, "us-east-1", 1, [r4_egress]))

    def r4_sg_ref(t):
        req = sg_ingress_req(sgB[0], [perm("tcp", 5432, 5432, groups=[
            {"groupId": sgB[1], "userId": B, "description": "allow 0.0.0.0/0 later"}])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [
            sg_rule_item(B, sgB[0], "tcp", 5432, 5432, ref=sgB[1], desc="allow 0.0.0.0/0 later")]}})
        return ec2_write(B, "eu-west-1", t, PB["bot"], "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "b", 3))

    G.append((B, "eu-west-1", 0, [r4_sg_ref]))

    def r4_private(t):
        req = sg_ingress_req(sgB[2], [perm("tcp", 443, 443, v4=["10.0.0.0/8"])])
        resp = ec2_resp({"securityGroupRuleSet": {"items": [sg_rule_item(B, sgB[2], "tcp", 443, 443, v4="10.0.0.0/8")]}})
        return ec2_write(B, "us-east-1", t, carol, "AuthorizeSecurityGroupIngress", req, resp, planted_id(4, "b", 4),
                         console=True)

    G.append((B, "us-east-1", 2, [r4_private]))

    def r4_modify_private(t):
        req = modify_sg_req(sgA[1], [{"Description": "app", "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                                      "CidrIpv4": "10.0.0.0/16"}])
        return ec2_write(A, "eu-west-1", t, PA["bot"], "ModifySecurityGroupRules", req, modify_sg_resp(),
                         planted_id(4, "b", 6))

    G.append((A, "eu-west-1", 0, [r4_modify_private]))

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


def evaluate(r: dict) -> list[str]:
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
            assert rec["eventID"].startswith("feed"), rec["eventID"]
            assert rec["awsRegion"] == region and rec.get("recipientAccountId", acct) == acct
            f["records"].append(rec)
            planted.append(rec)
            t += dt.timedelta(seconds=rng.randint(4, 20))

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
    expected = sorted((rule, r["eventID"]) for r in planted for rule in evaluate(r))
    got, ids, n_records, n_files = [], set(), 0, 0
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
    got.sort()
    assert got == expected, f"background records match rules: {sorted(set(got) - set(expected))}"
    planted_pos = sorted((rule, r["eventID"]) for r in planted for rule in evaluate(r))
    # every planted positive is an "a" id, every "b" id matches nothing
    assert all(eid[5] == "a" for _, eid in planted_pos), planted_pos
    assert {eid for _, eid in planted_pos} == {r["eventID"] for r in planted if r["eventID"][5] == "a"}
    assert len(planted_pos) == len({eid for _, eid in planted_pos}), "a planted event matches two rules"
    assert sum(1 for r in planted if "eventType" not in r) == 1

    with open(OUT / "expected-alerts.tsv", "w", newline="\n") as fh:
        fh.write("rule_name\tevent_id\n")
        for rule, eid in expected:
            fh.write(f"{rule}\t{eid}\n")

    per_rule = {}
    for rule, _ in expected:
        per_rule[rule] = per_rule.get(rule, 0) + 1
    neg = sum(1 for r in planted if r["eventID"][5] == "b")
    size = sum(p.stat().st_size for p in LOG_ROOT.rglob("*") if p.is_file())
    print(f"log files: {n_files} (+1 digest file), records: {n_records}, bytes on disk: {size}")
    print(f"planted: {len(planted)} events ({len(expected)} positives, {neg} tricky negatives)")
    for rule in sorted(per_rule):
        print(f"  {rule}: {per_rule[rule]} positives")
    print(f"digest: {rel(digest_dir / digest_name)} ({len(in_digest)} log files)")


if __name__ == "__main__":
    main()
