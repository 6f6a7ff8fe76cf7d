#!/usr/bin/env bash
# Side by side: runs one benchmark alternately in a checkout of BASE (any git ref) and in this tree, ROUNDS times,
# and prints every figure as its JSON line with "tree" (base | head) and "round" added. Host speed on shared
# machines drifts by a third within minutes, so two versions compare only in runs interleaved like this.
#
#   scripts/bench-ab.sh BASE NAME [ROUNDS]     e.g. scripts/bench-ab.sh origin/main goals 4
#
# NAME is a bench/NAME.bench.ts present in both trees. The base checkout is a temporary git worktree with its own
# npm ci (its prepare builds it); it is removed on exit.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BASE NAME [ROUNDS]   (BASE: a git ref; NAME: a bench/NAME.bench.ts)" >&2
  exit 2
fi
base_ref=$1
name=$2
rounds=${3:-4}
root=$(git rev-parse --show-toplevel)
if [ ! -f "$root/bench/$name.bench.ts" ]; then
  echo "no bench/$name.bench.ts in this tree" >&2
  exit 2
fi
base=$(mktemp -d "${TMPDIR:-/tmp}/hermes-bench-base-XXXXXX")
git -C "$root" worktree add --detach "$base" "$base_ref" >/dev/null
trap 'git -C "$root" worktree remove --force "$base"' EXIT
if [ ! -f "$base/bench/$name.bench.ts" ]; then
  echo "no bench/$name.bench.ts at $base_ref" >&2
  exit 2
fi
echo "building $base_ref in $base and this tree ..." >&2
(cd "$base" && npm ci --no-audit --no-fund >/dev/null)
(cd "$root" && npm run build >/dev/null)
for round in $(seq 1 "$rounds"); do
  for tree in base head; do
    dir=$([ "$tree" = base ] && echo "$base" || echo "$root")
    echo "round $round/$rounds: $tree" >&2
    (cd "$dir" && node --import tsx "bench/$name.bench.ts") |
      sed -n "s/^{\"bench\"/{\"tree\":\"$tree\",\"round\":$round,\"bench\"/p"
  done
done
