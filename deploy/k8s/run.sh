#!/bin/sh
# A distributed mqtt-sim run on Kubernetes, start to finish: one shared start time for the slices, the
# slices (Indexed Job), then the merge once every slice has completed, then the merged summary. Exits
# with the merge's verdict: 0 pass, 1 the run failed (an assertion, the merge, or a slice), 2 the
# cluster did not finish in time (or START_LEAD is not a whole number of seconds).
#
#   deploy/k8s/run.sh                  # in the current namespace
#   NAMESPACE=loadtest deploy/k8s/run.sh
#   SHARDS_TIMEOUT=7200 deploy/k8s/run.sh
#   START_LEAD=300 deploy/k8s/run.sh   # slow image pulls or node scale-up: start the timelines later
#
# Every slice starts its timeline at the same instant (mqtt-sim run --start-at), START_LEAD seconds
# (default 120) after this script stores it in the ConfigMap mqtt-sim-start, which the slices' pods read:
# time enough for them to be scheduled, pull the image and subscribe their consumers. A slice ready more
# than 10 s after it exits 2 and fails the Job: rerun with a larger START_LEAD.
#
# Reruns delete the previous Jobs first (a Job cannot be changed once created) and store a new start
# time; the results volume stays, each slice clears its own folder before it runs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
shards_timeout=${SHARDS_TIMEOUT:-3600}
merge_timeout=${MERGE_TIMEOUT:-900}
start_lead=${START_LEAD:-120}
case "$start_lead" in
  '' | *[!0-9]*)
    echo "run.sh: START_LEAD must be a whole number of seconds (the time from now to the slices' shared start), got '$start_lead'" >&2
    exit 2
    ;;
esac

k() {
  if [ -n "${NAMESPACE:-}" ]; then kubectl -n "$NAMESPACE" "$@"; else kubectl "$@"; fi
}

# Waits until the Job has condition Complete (returns 0) or Failed (returns 1), at most $2 seconds
# (returns 2). `kubectl wait --for=condition=complete` alone would wait out its timeout on a failed Job.
wait_job() {
  deadline=$(($(date +%s) + $2))
  while :; do
    conditions=$(k get job "$1" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
    case " $conditions " in
      *" Complete "*) return 0 ;;
      *" Failed "*) return 1 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "run.sh: job/$1 did not finish within $2 s (kubectl describe job/$1 says why)" >&2
      return 2
    fi
    sleep 5
  done
}

k delete job mqtt-sim-shards mqtt-sim-merge --ignore-not-found
# The shared t=0 in milliseconds since 1970 (what --start-at reads), created or replaced before the Job.
start_at=$((($(date +%s) + start_lead) * 1000))
k create configmap mqtt-sim-start --from-literal=START_AT="$start_at" --dry-run=client -o yaml | k apply -f -
echo "run.sh: the slices start their timelines together at START_AT=$start_at (ms since 1970), in $start_lead s"
k apply -k "$here"
echo "run.sh: waiting for job/mqtt-sim-shards (every slice) ..."
status=0
wait_job mqtt-sim-shards "$shards_timeout" || status=$?
if [ "$status" -ne 0 ]; then
  k get pods -l app.kubernetes.io/component=shard >&2 || true
  echo "run.sh: the slices did not all complete: see kubectl logs -l app.kubernetes.io/component=shard" >&2
  [ "$status" -eq 2 ] && exit 2
  exit 1
fi

k apply -k "$here/merge"
status=0
wait_job mqtt-sim-merge "$merge_timeout" || status=$?
k logs job/mqtt-sim-merge || true
[ "$status" -eq 2 ] && exit 2
[ "$status" -eq 0 ] || exit 1
echo "run.sh: merged report in /results/merged on volume mqtt-sim-results (deploy/k8s/README.md: copying the reports)"
