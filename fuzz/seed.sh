#!/bin/sh
# Builds the starting corpora of the fuzz targets from files in the repository
# (and the Sigma corpus beside it, when present). The corpora themselves are
# not committed (fuzz/corpus/ is ignored); the inputs fuzzing finds that
# matter are committed under tests/fuzz_regressions/ instead.
set -eu
cd "$(dirname "$0")/.."
out=fuzz/corpus
mkdir -p "$out/decode_rules" "$out/notification" "$out/rule_loader"

# decode_rules: delivery files (gzipped and not), NDJSON, the bad-input corpus.
n=0
for f in $(find sample-logs -name '*.json.gz' | sort | head -40); do
  n=$((n + 1))
  cp "$f" "$out/decode_rules/sample-$n.json.gz"
  gzip -dc "$f" > "$out/decode_rules/sample-$n.json"
done
for f in tests/fixtures/bad/*.json tests/fixtures/bad/*.ndjson tests/fixtures/bad/*.json.gz; do
  case "$f" in *bomb*|*huge-string*) continue ;; esac
  cp "$f" "$out/decode_rules/bad-$(basename "$f")"
done

# notification: every body shape the parser knows, and the bad ones.
cp tests/fixtures/bad/*.sqs "$out/notification/"
printf '%s' '{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"trail"},"object":{"key":"AWSLogs%2F111122223333%2FCloudTrail%2Fa+b%2Bc.json.gz","size":123,"eTag":"abc"}}}]}' > "$out/notification/s3-event"
printf '%s' '{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-10-05T12:00:00Z","Bucket":"trail"}' > "$out/notification/test-event"
printf '%s' '{"Type":"Notification","MessageId":"m","Message":"{\"s3Bucket\":\"trail\",\"s3ObjectKey\":[\"AWSLogs/1/CloudTrail/a.json.gz\"]}"}' > "$out/notification/sns-cloudtrail"
printf '%s' '{"version":"0","detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"trail"},"object":{"key":"AWSLogs/1/x.json.gz","size":5,"etag":"e"}}}' > "$out/notification/eventbridge"

# rule_loader: the shipped rules and the CloudTrail rules of the Sigma corpus.
for f in $(find rules -name "*.yml" | sort); do cp "$f" "$out/rule_loader/shipped-$(basename "$f")"; done
if [ -d ../shared/sigma ]; then
  for f in $(find ../shared/sigma -name '*.yml' | sort); do
    cp "$f" "$out/rule_loader/sigma-$(basename "$f")"
  done
fi
ls "$out"/* | wc -l
